package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
)

// monitoringToken signs claims as monitoring does under the monitoring contract: HS256 with the shared secret.
func monitoringToken(alg, secret string, claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	h := enc([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	p := enc([]byte(mustJSON(claims)))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc(mac.Sum(nil))
}

func TestMonitoringEnabled(t *testing.T) {
	full := auth.MonitoringConfig{Secret: "dev", PayloadKey: "monitor", Tenant: "ops"}
	if !full.Enabled() {
		t.Errorf("fully configured: not enabled")
	}
	var none *auth.MonitoringConfig
	if none.Enabled() {
		t.Errorf("nil config enabled")
	}
	for name, c := range map[string]auth.MonitoringConfig{
		"no secret":      {PayloadKey: "monitor", Tenant: "ops"},
		"no payload key": {Secret: "dev", Tenant: "ops"},
		"no tenant":      {Secret: "dev", PayloadKey: "monitor"},
		"nothing":        {},
	} {
		if c.Enabled() {
			t.Errorf("%s: enabled", name)
		}
		// An incomplete configuration leaves the general authenticator as it is.
		a := &auth.Authenticator{Clock: model.SystemClock{}}
		if got := a.ForMonitoring(&c); got != a {
			t.Errorf("%s: ForMonitoring returned another authenticator", name)
		}
	}
}

func TestMonitoringToken(t *testing.T) {
	clock := &stepClock{now: time.Unix(2_000_000_000, 0)}
	keys := newRecordingKeys(openStore(t, clock).APIKeys())
	key, secret := issue(t, keys, model.APIKeyIssue{Tier: "pro"})
	general := &auth.Authenticator{Keys: keys, Clock: clock, CacheTTL: time.Hour}
	defer general.Close()
	cfg := &auth.MonitoringConfig{Secret: "dev", PayloadKey: "monitor", Tenant: "ops"}
	mon := general.ForMonitoring(cfg)
	if mon == general {
		t.Fatal("ForMonitoring returned the general authenticator")
	}

	p, err := mon.Authenticate(t.Context(), monitoringToken("HS256", "dev", map[string]any{"monitor": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	wantScopes := []model.Scope{model.ScopeComponentsWrite, model.ScopeIncidentsWrite, model.ScopeComponentsRead, model.ScopeIncidentsRead}
	if p.TenantID != "ops" || p.ActorID != "monitoring" || p.CredentialID != "monitoring" || p.Tier != auth.DefaultTier ||
		p.KeyPrefix != "" || !slices.Equal(p.Scopes, wantScopes) {
		t.Errorf("monitoring principal %+v", p)
	}
	if p.Has(model.ScopeAPIKeysAdmin) || p.Has(model.ScopeAuditRead) {
		t.Errorf("monitoring principal may administer: %+v", p)
	}

	// The general authenticator does not know the monitoring token.
	if p, err := general.Authenticate(t.Context(), monitoringToken("HS256", "dev", map[string]any{"monitor": "x"})); p != nil || err == nil || err.Error() != badTokenMsg {
		t.Errorf("monitoring token on the general authenticator: %+v, %v", p, err)
	}

	// Refused tokens fall through to the general authenticator, whose answer is a bad token.
	now := clock.Now().Unix()
	refused := map[string]string{
		"wrong secret":      monitoringToken("HS256", "prod", map[string]any{"monitor": "x"}),
		"no payload claim":  monitoringToken("HS256", "dev", map[string]any{"other": "x"}),
		"HS512":             monitoringToken("HS512", "dev", map[string]any{"monitor": "x"}),
		"alg none":          monitoringToken("none", "dev", map[string]any{"monitor": "x"}),
		"expired now":       monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "exp": now}),
		"expired before":    monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "exp": now - 1}),
		"not yet valid":     monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "nbf": now + 1}),
		"exp not a number":  monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "exp": "never"}),
		"nbf not a number":  monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "nbf": true}),
		"garbage JWT shape": "a.b.c",
	}
	for name, tok := range refused {
		if p, err := mon.Authenticate(t.Context(), tok); p != nil || err == nil || err.Error() != badTokenMsg {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	for name, claims := range map[string]map[string]any{
		"exp a second ahead": {"monitor": "x", "exp": now + 1},
		"nbf now":            {"monitor": "x", "nbf": now},
		"nbf a second ago":   {"monitor": "x", "nbf": now - 1},
		"both":               {"monitor": "x", "nbf": now, "exp": now + 1},
	} {
		if p, err := mon.Authenticate(t.Context(), monitoringToken("HS256", "dev", claims)); err != nil || p.ActorID != "monitoring" {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	// exp is compared in whole seconds: within the second before it, still valid.
	clock.add(999 * time.Millisecond)
	if _, err := mon.Authenticate(t.Context(), monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "exp": now + 1})); err != nil {
		t.Errorf("999ms before exp: %v", err)
	}
	clock.add(time.Millisecond)
	if _, err := mon.Authenticate(t.Context(), monitoringToken("HS256", "dev", map[string]any{"monitor": "x", "exp": now + 1})); err == nil || err.Error() != badTokenMsg {
		t.Errorf("at exp: %v", err)
	}

	// API keys keep working on the monitoring endpoints, through the shared cache.
	for range 2 {
		expectKey(t, mon, secret, key, "API key on the monitoring authenticator")
		expectKey(t, general, secret, key, "API key on the general authenticator")
	}
	if n := keys.count(key.Prefix); n != 1 {
		t.Errorf("%d lookups, want 1 (one cache for both)", n)
	}
	expectBadKey(t, mon, secret[:len(secret)-1]+flip(secret[len(secret)-1]), "wrong API key on the monitoring authenticator")
}
