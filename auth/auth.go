// Package auth turns request credentials into a model.Principal and charges
// each principal's rate-limit budget. REST and GraphQL share it, so that a
// caller is the same principal, with the same budget, whichever door it uses.
package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Authenticator verifies credentials.
type Authenticator struct {
	Keys  model.APIKeyStore
	Clock model.Clock
	// OIDC, if set, verifies bearer JWTs; API keys keep working beside it.
	OIDC *OIDC
	// monitoring, on the monitoring endpoints' authenticator, accepts seed
	// 001's token; parent is the general authenticator whose cache it shares.
	monitoring *MonitoringConfig
	parent     *Authenticator
	// CacheTTL keeps looked-up keys in memory for this long, saving a database
	// round trip per request; 0 disables the cache. Only keys that exist are
	// cached; the secret is still compared and expiry checked on every use.
	CacheTTL time.Duration

	mu    sync.RWMutex
	cache map[string]cachedKey
	// gen counts Forget calls: a lookup that raced one must not cache what it read.
	gen uint64
	// touched remembers when each key's last use was recorded.
	touched sync.Map // key id -> time.Time
	touches sync.WaitGroup
	// closing stops new last-use writes once Close began: requests still in
	// flight may authenticate while the server closes, and a WaitGroup may
	// not gain members while it is being waited for.
	closeMu sync.Mutex
	closing bool
}

// Close waits for last-use writes in flight; later uses are not recorded.
func (a *Authenticator) Close() {
	a.closeMu.Lock()
	a.closing = true
	a.closeMu.Unlock()
	a.touches.Wait()
}

// Flush waits for the last-use writes in flight, and goes on recording.
// Its caller must not authenticate meanwhile (a test's barrier).
func (a *Authenticator) Flush() { a.touches.Wait() }

// touchEvery throttles last-used writes: one per key per minute at most.
const touchEvery = time.Minute

// Forget drops a key from the cache ("" drops every key), so that a revoked
// or rotated key is looked up afresh on its next use.
func (a *Authenticator) Forget(prefix string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	if prefix == "" {
		a.cache = nil
		return
	}
	delete(a.cache, prefix)
}

// touch records a key's use without holding up the request.
func (a *Authenticator) touch(key *model.APIKey, now time.Time) {
	last, loaded := a.touched.LoadOrStore(key.ID, now)
	if loaded {
		if now.Sub(last.(time.Time)) < touchEvery || !a.touched.CompareAndSwap(key.ID, last, now) {
			return
		}
	}
	a.closeMu.Lock()
	if a.closing {
		a.closeMu.Unlock()
		return
	}
	a.touches.Add(1)
	a.closeMu.Unlock()
	go func() {
		defer a.touches.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Keys.TouchAPIKey(ctx, key.ID, now) // best effort: a lost touch only delays lastUsedAt
	}()
}

type cachedKey struct {
	key   *model.APIKey
	until time.Time
}

// lookup returns the key with prefix, from the cache while it is fresh.
func (a *Authenticator) lookup(ctx context.Context, prefix string) (*model.APIKey, error) {
	now := a.Clock.Now()
	if a.CacheTTL > 0 {
		a.mu.RLock()
		c, ok := a.cache[prefix]
		a.mu.RUnlock()
		if ok && now.Before(c.until) {
			return c.key, nil
		}
	}
	a.mu.RLock()
	gen := a.gen
	a.mu.RUnlock()
	key, err := a.Keys.APIKeyByPrefix(ctx, prefix)
	if err != nil || a.CacheTTL <= 0 {
		return key, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return key, nil // a revocation may have landed after our read: use it once, cache nothing
	}
	if a.cache == nil || len(a.cache) >= maxCachedKeys {
		a.cache = make(map[string]cachedKey) // crude but bounded: a refill costs one query per key
	}
	a.cache[prefix] = cachedKey{key: key, until: now.Add(a.CacheTTL)}
	return key, nil
}

const maxCachedKeys = 100_000

// errBadCredential is deliberately the same for malformed, unknown, expired and
// revoked keys: the answer must not help anyone enumerate keys.
var errBadCredential = model.Unauthorized("Invalid or missing API key")

// Credential extracts the raw credential from X-API-Key, API-Key or
// Authorization: Bearer, in that order. ok is false when none is present.
func Credential(h http.Header) (cred string, ok bool) {
	if v := h.Get("X-API-Key"); v != "" {
		return strings.TrimSpace(v), true
	}
	if v := h.Get("API-Key"); v != "" {
		return strings.TrimSpace(v), true
	}
	if v := h.Get("Authorization"); v != "" {
		scheme, token, found := strings.Cut(strings.TrimSpace(v), " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			// A present but unusable Authorization header is a bad credential, not an absent one.
			return "", true
		}
		return strings.TrimSpace(token), true
	}
	return "", false
}

// Authenticate returns the principal for a raw credential: an API key, or a
// JWT when OIDC is configured. Codes: unauthorized, internal (the key store
// failed).
func (a *Authenticator) Authenticate(ctx context.Context, cred string) (*model.Principal, error) {
	if a.parent != nil {
		if looksLikeJWT(cred) {
			if p, err := a.monitoring.authenticate(ctx, cred, a.Clock.Now()); err == nil {
				return p, nil
			}
		}
		return a.parent.Authenticate(ctx, cred)
	}
	if looksLikeJWT(cred) {
		if a.OIDC == nil {
			return nil, errBadToken
		}
		return a.OIDC.Authenticate(ctx, cred)
	}
	prefix, ok := model.ParseAPIKey(cred)
	if !ok {
		return nil, errBadCredential
	}
	key, err := a.lookup(ctx, prefix)
	if err != nil {
		if model.ErrorCode(err) == model.CodeNotFound {
			return nil, errBadCredential
		}
		return nil, err
	}
	if subtle.ConstantTimeCompare(key.Hash, model.HashAPIKey(cred)) != 1 {
		return nil, errBadCredential
	}
	now := a.Clock.Now()
	if key.RevokedAt != nil || (key.ExpiresAt != nil && !now.Before(*key.ExpiresAt)) {
		return nil, errBadCredential
	}
	a.touch(key, now)
	return &model.Principal{
		TenantID:     key.TenantID,
		ActorID:      key.ActorID,
		Scopes:       key.Scopes,
		Tier:         key.Tier,
		CredentialID: key.ID,
		KeyPrefix:    key.Prefix,
	}, nil
}

// AuthenticateRequest reads the request's credential and authenticates it.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*model.Principal, error) {
	cred, ok := Credential(r.Header)
	if !ok {
		return nil, errBadCredential
	}
	return a.Authenticate(r.Context(), cred)
}
