package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// The exact messages of the refusals: every bad key gets the same one.
const (
	badKeyMsg   = "unauthorized: Invalid or missing API key"
	badTokenMsg = "unauthorized: Invalid or expired bearer token"
)

// t0 is a whole second, so that database time truncation changes nothing.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// openStore opens a migrated SQLite store whose clock is clock.
func openStore(t *testing.T, clock model.Clock) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "k.db"), store.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// touchCall is one TouchAPIKey call seen by recordingKeys.
type touchCall struct {
	id       string
	at       time.Time
	deadline time.Duration // how far ahead of the call its context's deadline was (0: none)
	err      error
}

// recordingKeys wraps a key store: it counts lookups per prefix, can fail
// them or run a hook in the middle of one, and records last-use writes.
type recordingKeys struct {
	model.APIKeyStore

	mu      sync.Mutex
	lookups map[string]int
	touches []touchCall
	fail    error               // returned by APIKeyByPrefix when set
	during  func(prefix string) // runs inside APIKeyByPrefix, after the read
}

func newRecordingKeys(inner model.APIKeyStore) *recordingKeys {
	return &recordingKeys{APIKeyStore: inner, lookups: map[string]int{}}
}

func (r *recordingKeys) APIKeyByPrefix(ctx context.Context, prefix string) (*model.APIKey, error) {
	r.mu.Lock()
	r.lookups[prefix]++
	fail, during := r.fail, r.during
	r.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	k, err := r.APIKeyStore.APIKeyByPrefix(ctx, prefix)
	if during != nil {
		during(prefix)
	}
	return k, err
}

func (r *recordingKeys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	c := touchCall{id: id, at: at}
	if d, ok := ctx.Deadline(); ok {
		c.deadline = time.Until(d)
	}
	c.err = r.APIKeyStore.TouchAPIKey(ctx, id, at)
	r.mu.Lock()
	r.touches = append(r.touches, c)
	r.mu.Unlock()
	return c.err
}

func (r *recordingKeys) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[prefix]
}

func (r *recordingKeys) touchCalls() []touchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]touchCall(nil), r.touches...)
}

func issue(t *testing.T, keys model.APIKeyStore, in model.APIKeyIssue) (*model.APIKey, string) {
	t.Helper()
	if in.TenantID == "" {
		in.TenantID = "acme"
	}
	if in.Name == "" {
		in.Name = "k"
	}
	if len(in.Scopes) == 0 {
		in.Scopes = []model.Scope{model.ScopeIncidentsRead}
	}
	k, secret, err := keys.IssueAPIKey(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return k, secret
}

// expectBadKey checks that cred is refused with the one bad-key message.
func expectBadKey(t *testing.T, a *auth.Authenticator, cred, what string) {
	t.Helper()
	p, err := a.Authenticate(t.Context(), cred)
	if p != nil || err == nil || err.Error() != badKeyMsg {
		t.Errorf("%s: principal %+v, error %v; want %q", what, p, err, badKeyMsg)
	}
}

func expectKey(t *testing.T, a *auth.Authenticator, cred string, key *model.APIKey, what string) {
	t.Helper()
	p, err := a.Authenticate(t.Context(), cred)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if p.CredentialID != key.ID || p.KeyPrefix != key.Prefix || p.TenantID != key.TenantID || p.ActorID != key.ActorID || p.Tier != key.Tier {
		t.Errorf("%s: principal %+v for key %+v", what, p, key)
	}
}

// TestKeyExpiryInstant: a key works strictly before its expiry and is refused
// at the instant itself and after it.
func TestKeyExpiryInstant(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := openStore(t, clock).APIKeys()
	exp := t0.Add(time.Hour)
	key, secret := issue(t, keys, model.APIKeyIssue{Tier: "pro", ExpiresAt: &exp})
	for _, ttl := range []time.Duration{0, time.Hour} {
		a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: ttl}
		setClock(clock, exp.Add(-time.Nanosecond))
		expectKey(t, a, secret, key, "1ns before expiry")
		setClock(clock, exp)
		expectBadKey(t, a, secret, "at the expiry instant")
		setClock(clock, exp.Add(time.Nanosecond))
		expectBadKey(t, a, secret, "1ns after expiry")
		a.Close()
	}
	// A key without expiry never expires.
	forever, fsecret := issue(t, keys, model.APIKeyIssue{})
	setClock(clock, t0.Add(100*365*24*time.Hour))
	expectKey(t, &auth.Authenticator{Keys: keys, Clock: clock}, fsecret, forever, "no expiry, a century later")
}

// TestRevokedKeyRefused: revocation ends a key at once (once the cache forgets it).
func TestRevokedKeyRefused(t *testing.T) {
	clock := &stepClock{now: t0}
	st := openStore(t, clock)
	keys := newRecordingKeys(st.APIKeys())
	key, secret := issue(t, keys, model.APIKeyIssue{})
	a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: time.Hour}
	defer a.Close()
	expectKey(t, a, secret, key, "before revocation")
	admin := model.WithPrincipal(t.Context(), &model.Principal{TenantID: "acme", ActorID: "admin", Tier: "default",
		Scopes: []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead}})
	if _, err := st.KeyAdmin().Revoke(admin, key.ID); err != nil {
		t.Fatal(err)
	}
	a.Forget(key.Prefix)
	expectBadKey(t, a, secret, "revoked")
	if n := keys.count(key.Prefix); n != 2 {
		t.Errorf("%d lookups, want 2 (Forget must drop the cached copy)", n)
	}
}

// TestRotationOverlap: the old key works until exactly now+overlap, the new
// one from the start; an overlap of 0 ends the old key at once.
func TestRotationOverlap(t *testing.T) {
	clock := &stepClock{now: t0}
	st := openStore(t, clock)
	keys := st.APIKeys()
	a := &auth.Authenticator{Keys: keys, Clock: clock}
	defer a.Close()
	admin := model.WithPrincipal(t.Context(), &model.Principal{TenantID: "acme", ActorID: "admin", Tier: "default",
		Scopes: []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead}})

	// The admin rotates keys that act as it (rotation never hands out
	// another actor's identity).
	old, oldSecret := issue(t, keys, model.APIKeyIssue{ActorID: "admin"})
	next, nextSecret, err := st.KeyAdmin().Rotate(admin, old.ID, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if next.Prefix == old.Prefix || next.ActorID != old.ActorID || next.Tier != old.Tier {
		t.Fatalf("successor %+v of %+v", next, old)
	}
	setClock(clock, t0.Add(90*time.Second-time.Nanosecond))
	expectKey(t, a, oldSecret, old, "old key, just before the overlap ends")
	expectKey(t, a, nextSecret, next, "new key, during the overlap")
	setClock(clock, t0.Add(90*time.Second))
	expectBadKey(t, a, oldSecret, "old key, at the end of the overlap")
	expectKey(t, a, nextSecret, next, "new key, after the overlap")

	// Overlap 0: the old key is refused at the instant of rotation.
	setClock(clock, t0.Add(time.Hour))
	old2, old2Secret := issue(t, keys, model.APIKeyIssue{Name: "k2", ActorID: "admin"})
	if _, _, err := st.KeyAdmin().Rotate(admin, old2.ID, 0); err != nil {
		t.Fatal(err)
	}
	expectBadKey(t, a, old2Secret, "old key after a rotation without overlap")

	// A key expiring before the overlap would end keeps its own expiry.
	soon := t0.Add(2 * time.Hour)
	setClock(clock, t0.Add(time.Hour))
	old3, old3Secret := issue(t, keys, model.APIKeyIssue{Name: "k3", ActorID: "admin", ExpiresAt: &soon})
	if _, _, err := st.KeyAdmin().Rotate(admin, old3.ID, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	setClock(clock, soon.Add(-time.Nanosecond))
	expectKey(t, a, old3Secret, old3, "old key before its own expiry")
	setClock(clock, soon)
	expectBadKey(t, a, old3Secret, "old key at its own expiry, inside the overlap")
}

// TestKeyCacheTTL: a cached key is served until exactly now+TTL, then looked up again.
func TestKeyCacheTTL(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	key, secret := issue(t, keys, model.APIKeyIssue{})
	a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: 10 * time.Second}
	defer a.Close()
	expectKey(t, a, secret, key, "first use")
	clock.add(10*time.Second - time.Nanosecond)
	expectKey(t, a, secret, key, "just inside the TTL")
	if n := keys.count(key.Prefix); n != 1 {
		t.Errorf("%d lookups just inside the TTL, want 1", n)
	}
	clock.add(time.Nanosecond)
	expectKey(t, a, secret, key, "at the TTL")
	if n := keys.count(key.Prefix); n != 2 {
		t.Errorf("%d lookups at the TTL, want 2", n)
	}
	// The refreshed entry lives for another TTL from the second lookup.
	clock.add(10*time.Second - time.Nanosecond)
	expectKey(t, a, secret, key, "inside the second TTL")
	if n := keys.count(key.Prefix); n != 2 {
		t.Errorf("%d lookups inside the second TTL, want 2", n)
	}

	// A cache of 0 looks every use up, even if entries were cached before.
	a.CacheTTL = 0
	expectKey(t, a, secret, key, "cache disabled")
	expectKey(t, a, secret, key, "cache disabled, again")
	if n := keys.count(key.Prefix); n != 4 {
		t.Errorf("%d lookups with the cache disabled, want 4", n)
	}

	// Unknown keys are never cached.
	a.CacheTTL = time.Minute
	unknown := "ik_zzzzzzzzzzzz_" + secret[len(secret)-32:]
	for range 2 {
		expectBadKey(t, a, unknown, "unknown key")
	}
	if n := keys.count("ik_zzzzzzzzzzzz"); n != 2 {
		t.Errorf("%d lookups of an unknown key used twice, want 2", n)
	}
}

// TestKeyCacheHoldsManyKeys: caching one key does not evict another, and
// Forget drops exactly the key it names ("" drops all).
func TestKeyCacheHoldsManyKeys(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	ka, sa := issue(t, keys, model.APIKeyIssue{Name: "a"})
	kb, sb := issue(t, keys, model.APIKeyIssue{Name: "b"})
	a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: time.Hour}
	defer a.Close()
	lookups := func(what string, wantA, wantB int) {
		t.Helper()
		if na, nb := keys.count(ka.Prefix), keys.count(kb.Prefix); na != wantA || nb != wantB {
			t.Errorf("%s: lookups a=%d b=%d, want a=%d b=%d", what, na, nb, wantA, wantB)
		}
	}
	expectKey(t, a, sa, ka, "a")
	expectKey(t, a, sb, kb, "b")
	expectKey(t, a, sa, ka, "a again")
	expectKey(t, a, sb, kb, "b again")
	lookups("both cached", 1, 1)

	a.Forget(ka.Prefix)
	expectKey(t, a, sa, ka, "a after Forget(a)")
	expectKey(t, a, sb, kb, "b after Forget(a)")
	lookups("after Forget(a)", 2, 1)

	a.Forget("")
	expectKey(t, a, sa, ka, "a after Forget(all)")
	expectKey(t, a, sb, kb, "b after Forget(all)")
	lookups("after Forget(all)", 3, 2)

	a.Forget("ik_000000000000") // a prefix not cached: nothing else changes
	expectKey(t, a, sa, ka, "a after Forget(other)")
	expectKey(t, a, sb, kb, "b after Forget(other)")
	lookups("after Forget(other)", 3, 2)
}

// TestLookupRacingForget: a key read while a Forget lands is used once but
// not cached, since a revocation may have come after the read.
func TestLookupRacingForget(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	key, secret := issue(t, keys, model.APIKeyIssue{})
	a := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: time.Hour}
	defer a.Close()
	keys.during = func(string) { a.Forget(key.Prefix) }
	expectKey(t, a, secret, key, "use racing a Forget")
	keys.during = nil
	expectKey(t, a, secret, key, "next use")
	expectKey(t, a, secret, key, "third use")
	if n := keys.count(key.Prefix); n != 2 {
		t.Errorf("%d lookups, want 2 (the raced read must not be cached, the next one must)", n)
	}
}

// TestKeyStoreFailure: an unknown key is a bad credential, but a failing key
// store is not disguised as one.
func TestKeyStoreFailure(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	_, secret := issue(t, keys, model.APIKeyIssue{})
	a := &auth.Authenticator{Keys: keys, Clock: clock}
	defer a.Close()
	boom := model.Internal(errors.New("database on fire"), "authenticate")
	keys.fail = boom
	p, err := a.Authenticate(t.Context(), secret)
	if p != nil || !errors.Is(err, boom) || model.ErrorCode(err) != model.CodeInternal {
		t.Errorf("failing store: %+v, %v", p, err)
	}
	keys.fail = model.NotFound("API key", "x")
	expectBadKey(t, a, secret, "store says not found")
}

// TestMalformedKeys: anything that is not ik_<12>_<32> is refused without a lookup.
func TestMalformedKeys(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	_, secret := issue(t, keys, model.APIKeyIssue{})
	a := &auth.Authenticator{Keys: keys, Clock: clock}
	defer a.Close()
	for _, bad := range []string{"", "ik_", secret + "x", secret[:len(secret)-1], "IK" + secret[2:], " " + secret} {
		expectBadKey(t, a, bad, "malformed "+bad)
	}
	keys.mu.Lock()
	n := len(keys.lookups)
	keys.mu.Unlock()
	if n != 0 {
		t.Errorf("malformed keys caused %d lookups", n)
	}
	// A JWT-shaped credential without OIDC is a bad token, not a bad key.
	if p, err := a.Authenticate(t.Context(), "a.b.c"); p != nil || err == nil || err.Error() != badTokenMsg {
		t.Errorf("JWT without OIDC: %+v, %v", p, err)
	}
	// AuthenticateRequest without any credential.
	req := httptest.NewRequest(http.MethodGet, "/v1/incidents", nil)
	if p, err := a.AuthenticateRequest(req); p != nil || err == nil || err.Error() != badKeyMsg {
		t.Errorf("no credential: %+v, %v", p, err)
	}
	req.Header.Set("Authorization", "bearer   "+secret+"  ")
	if p, err := a.AuthenticateRequest(req); err != nil || p == nil || p.TenantID != "acme" {
		t.Errorf("lower-case bearer with spaces: %+v, %v", p, err)
	}
}

// TestLastUseThrottled: last use is written at most once a minute per key:
// on first use, then on the first use a full minute after the last write.
func TestLastUseThrottled(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	ka, sa := issue(t, keys, model.APIKeyIssue{Name: "a"})
	kb, sb := issue(t, keys, model.APIKeyIssue{Name: "b"})
	a := &auth.Authenticator{Keys: keys, Clock: clock}
	steps := []time.Duration{0, time.Second, 60*time.Second - time.Nanosecond, 60 * time.Second,
		119 * time.Second, 120*time.Second - time.Nanosecond, 120 * time.Second, 10 * time.Minute}
	for _, d := range steps {
		setClock(clock, t0.Add(d))
		expectKey(t, a, sa, ka, "a at "+d.String())
		a.Flush() // wait for the write, so that writes land in order
	}
	setClock(clock, t0.Add(30*time.Second))
	expectKey(t, a, sb, kb, "b") // another key has its own throttle
	a.Close()
	setClock(clock, t0.Add(time.Hour))
	expectKey(t, a, sa, ka, "a after Close") // served, but no longer recorded
	var gotA []time.Duration
	var gotB int
	for _, c := range keys.touchCalls() {
		if c.err != nil {
			t.Errorf("touch %s at %v: %v", c.id, c.at, c.err)
		}
		if c.deadline <= 4*time.Second || c.deadline > 5*time.Second {
			t.Errorf("touch %s: deadline %v ahead, want 5s", c.id, c.deadline)
		}
		switch c.id {
		case ka.ID:
			gotA = append(gotA, c.at.Sub(t0))
		case kb.ID:
			gotB++
		}
	}
	want := []time.Duration{0, 60 * time.Second, 120 * time.Second, 10 * time.Minute}
	if len(gotA) != len(want) {
		t.Fatalf("touches of a at %v, want %v", gotA, want)
	}
	for i := range want {
		if gotA[i] != want[i] {
			t.Errorf("touches of a at %v, want %v", gotA, want)
			break
		}
	}
	if gotB != 1 {
		t.Errorf("%d touches of b, want 1", gotB)
	}
	// The write landed: the key's last use is the last recorded time.
	stored, err := keys.APIKeyStore.APIKeyByPrefix(t.Context(), ka.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LastUsedAt == nil || !stored.LastUsedAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("lastUsedAt %v, want %v", stored.LastUsedAt, t0.Add(10*time.Minute))
	}
}

func setClock(c *stepClock, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}
