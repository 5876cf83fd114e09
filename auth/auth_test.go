package auth_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// countingKeys wraps the real store to count lookups.
type countingKeys struct {
	model.APIKeyStore
	n atomic.Int64
}

func (c *countingKeys) APIKeyByPrefix(ctx context.Context, prefix string) (*model.APIKey, error) {
	c.n.Add(1)
	return c.APIKeyStore.APIKeyByPrefix(ctx, prefix)
}

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openKeys(t *testing.T) model.APIKeyStore { return openKeysTB(t) }

func openKeysTB(t testing.TB) model.APIKeyStore {
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st.APIKeys()
}

func TestAuthenticateAndCache(t *testing.T) {
	keys := &countingKeys{APIKeyStore: openKeys(t)}
	clock := &stepClock{now: time.Now()}
	exp := clock.now.Add(time.Hour)
	key, secret, err := keys.IssueAPIKey(t.Context(), model.APIKeyIssue{TenantID: "acme", Name: "k",
		Scopes: []model.Scope{model.ScopeIncidentsRead}, Tier: "pro", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: 10 * time.Second}
	for range 3 {
		p, err := a.Authenticate(t.Context(), secret)
		if err != nil || p.TenantID != "acme" || p.CredentialID != key.ID || p.ActorID != key.ID || p.Tier != "pro" || !p.Has(model.ScopeIncidentsRead) {
			t.Fatalf("principal %+v, %v", p, err)
		}
	}
	if n := keys.n.Load(); n != 1 {
		t.Errorf("%d lookups for 3 requests within the TTL, want 1", n)
	}
	// A wrong secret with a valid prefix is refused even from the cache.
	if _, err := a.Authenticate(t.Context(), secret[:len(secret)-1]+flip(secret[len(secret)-1])); model.ErrorCode(err) != model.CodeUnauthorized {
		t.Errorf("wrong secret: %v", err)
	}
	clock.add(11 * time.Second)
	if _, err := a.Authenticate(t.Context(), secret); err != nil || keys.n.Load() != 2 {
		t.Errorf("after the TTL: %v, %d lookups", err, keys.n.Load())
	}
	// Expiry is checked on every use, cached or not.
	clock.add(time.Hour)
	if _, err := a.Authenticate(t.Context(), secret); model.ErrorCode(err) != model.CodeUnauthorized {
		t.Errorf("expired key: %v", err)
	}
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestCredentialHeaders(t *testing.T) {
	cases := []struct {
		h    http.Header
		cred string
		ok   bool
	}{
		{http.Header{"X-Api-Key": {"k1"}}, "k1", true},
		{http.Header{"Api-Key": {"k2"}}, "k2", true},
		{http.Header{"Authorization": {"Bearer k3"}}, "k3", true},
		{http.Header{"Authorization": {"Basic xyz"}}, "", true},
		{http.Header{"X-Api-Key": {"k1"}, "Authorization": {"Bearer k3"}}, "k1", true},
		{http.Header{}, "", false},
	}
	for _, c := range cases {
		cred, ok := auth.Credential(c.h)
		if cred != c.cred || ok != c.ok {
			t.Errorf("%v: %q %v", c.h, cred, ok)
		}
	}
}

func stores(t *testing.T) map[string]auth.Store {
	out := map[string]auth.Store{"memory": auth.NewMemoryStore()}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		st, closeFn, err := auth.NewRedisStore(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		out["redis"] = st
	} else {
		t.Log("TEST_REDIS_URL is not set: the Redis variant is skipped")
	}
	return out
}

// TestLimiterExactUnderContention: 100 concurrent requests against a budget
// of 50 let exactly 50 through, on each store.
func TestLimiterExactUnderContention(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			tiers, err := auth.ParseTiers("default=50-M", nil)
			if err != nil {
				t.Fatal(err)
			}
			l := auth.NewLimiter(st, tiers)
			key := "k" + model.RandomString(8, "abcdefgh")
			var ok, failed atomic.Int64
			var wg sync.WaitGroup
			for range 100 {
				wg.Go(func() {
					u, err := l.Charge(t.Context(), key, "default", 1)
					switch {
					case err != nil:
						failed.Add(1)
					case !u.Reached:
						ok.Add(1)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 50 || failed.Load() != 0 {
				t.Errorf("%d let through, want 50 (%d charges failed)", ok.Load(), failed.Load())
			}
		})
	}
}

// TestSharedBudget: two limiters on one Redis (two instances) share a budget.
func TestSharedBudget(t *testing.T) {
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		t.Skip("TEST_REDIS_URL is not set: skipped")
	}
	tiers, err := auth.ParseTiers("default=10-M", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ls []*auth.Limiter
	for range 2 {
		st, closeFn, err := auth.NewRedisStore(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		ls = append(ls, auth.NewLimiter(st, tiers))
	}
	key := "shared" + model.RandomString(8, "abcdefgh")
	passed := 0
	for i := range 20 {
		u, err := ls[i%2].Charge(t.Context(), key, "default", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Reached {
			passed++
		}
	}
	if passed != 10 {
		t.Errorf("%d passed across two instances, want 10", passed)
	}
}

func TestTiersAndBurst(t *testing.T) {
	tiers, err := auth.ParseTiers(auth.BuiltinTiers+",tiny=3-M,standard=100-M:2-S", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tiers["premium"].Rate.Limit != 5000 || tiers["premium"].Burst.Limit != 500 || tiers["free"].Rate.Period != time.Hour {
		t.Errorf("built-in tiers: %+v", tiers)
	}
	l := auth.NewLimiter(auth.NewMemoryStore(), tiers)
	// The burst window refuses the third request within a second, without spending the minute.
	charge := func(key, tier string, cost int64) auth.Usage {
		t.Helper()
		u, err := l.Charge(t.Context(), key, tier, cost)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	var last auth.Usage
	for range 3 {
		last = charge("b", "standard", 1)
	}
	if !last.Reached || last.Remaining != 98 || last.Describe != "2 requests per second (burst)" {
		t.Errorf("burst: %+v", last)
	}
	// Cost counts: a charge of 3 spends a tiny budget at once.
	if u := charge("c", "tiny", 3); u.Reached || u.Remaining != 0 || u.Limit != 3 {
		t.Errorf("cost: %+v", u)
	}
	if u := charge("c", "tiny", 1); !u.Reached {
		t.Errorf("past the budget: %+v", u)
	}
	// An unknown tier falls back to the default.
	if u := charge("d", "nonexistent", 1); u.Limit != 200 {
		t.Errorf("unknown tier: %+v", u)
	}
	for _, bad := range []string{"x", "=5-M", "x=lots", "x=5-M:10-H", "x=5-M:y"} {
		if _, err := auth.ParseTiers(bad, tiers); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
