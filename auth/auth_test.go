package auth_test

import (
	"context"
	"net/http"
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

func openKeys(t *testing.T) model.APIKeyStore {
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

// TestLimiterExactUnderContention: 100 concurrent requests against a budget
// of 50 let exactly 50 through.
func TestLimiterExactUnderContention(t *testing.T) {
	l, err := auth.NewLimiter("50-M")
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			c, err := l.Charge(t.Context(), "k")
			if err == nil && !c.Reached {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Errorf("%d let through, want 50", ok.Load())
	}
	if l.Describe() != "50 requests per minute" {
		t.Errorf("describe %q", l.Describe())
	}
}
