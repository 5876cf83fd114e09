package auth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestOIDCTimeClaims pins exp and nbf at their boundaries against the
// authenticator's clock (go-oidc compares them; nbf gets 5 minutes of leeway
// for clock skew).
func TestOIDCTimeClaims(t *testing.T) {
	is := apitest.NewIssuer(t)
	clock := &stepClock{now: time.Unix(2_000_000_000, 0)}
	o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	T := clock.Now()
	check := func(what string, at time.Time, claims map[string]any, ok bool) {
		t.Helper()
		setClock(clock, at)
		p, err := o.Authenticate(t.Context(), is.Token(claims))
		switch {
		case ok && (err != nil || p == nil || p.ActorID != "user_1"):
			t.Errorf("%s: refused: %+v, %v", what, p, err)
		case !ok && (p != nil || err == nil || err.Error() != badTokenMsg):
			t.Errorf("%s: %+v, %v; want %q", what, p, err, badTokenMsg)
		}
	}
	exp := map[string]any{"iat": T.Unix() - 60, "exp": T.Unix()}
	check("1s before exp", T.Add(-time.Second), exp, true)
	check("1s after exp", T.Add(time.Second), exp, false)
	check("an hour after exp", T.Add(time.Hour), exp, false)

	nbf := map[string]any{"iat": T.Unix(), "nbf": T.Add(5 * time.Minute).Unix(), "exp": T.Add(time.Hour).Unix()}
	check("nbf 5 minutes ahead (within the leeway)", T, nbf, true)
	check("nbf 5 minutes and 1s ahead", T.Add(-time.Second), nbf, false)
	check("nbf passed", T.Add(10*time.Minute), nbf, true)

	check("no exp", T, map[string]any{"exp": nil}, false)
}

// TestOIDCAudienceIssuerAndClaims: iss and aud match exactly; the claims map
// to the principal as the README says.
func TestOIDCAudienceIssuerAndClaims(t *testing.T) {
	is := apitest.NewIssuer(t)
	o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd", TenantClaim: "org"}, model.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	for name, claims := range map[string]map[string]any{
		"audience differs in case":   {"org": "acme", "aud": "Incidentd"},
		"audience with a space":      {"org": "acme", "aud": "incidentd "},
		"audience list without ours": {"org": "acme", "aud": []string{"a", "b"}},
		"no audience":                {"org": "acme", "aud": nil},
		"issuer with a slash":        {"org": "acme", "iss": is.URL + "/"},
		"no issuer":                  {"org": "acme", "iss": nil},
		"tenant under tenant_id":     {}, // the configured claim is org
		"tenant not a string":        {"org": 7},
		"no subject":                 {"org": "acme", "sub": nil},
	} {
		p, err := o.Authenticate(t.Context(), is.Token(claims))
		if p != nil || model.ErrorCode(err) != model.CodeUnauthorized {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	p, err := o.Authenticate(t.Context(), is.Token(map[string]any{"org": "acme", "aud": []string{"other", "incidentd"},
		"roles": []any{"incidents:write", 5, "admin", "incidents:write"}, "permissions": []string{" audit:read "},
		"scope": "incidents:write  components:read bogus"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Scope{model.ScopeIncidentsWrite, model.ScopeAuditRead, model.ScopeComponentsRead}
	if p.TenantID != "acme" || p.ActorID != "user_1" || p.Tier != auth.DefaultTier || p.KeyPrefix != "" ||
		p.CredentialID != "oidc:"+is.URL+"|acme|user_1" || !slices.Equal(p.Scopes, want) {
		t.Errorf("principal %+v, want scopes %v", p, want)
	}

	if _, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL}, model.SystemClock{}); err == nil {
		t.Errorf("no audience accepted")
	}
	if _, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Audience: "incidentd"}, model.SystemClock{}); err == nil {
		t.Errorf("no issuer accepted")
	}
	if _, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL + "/nowhere", Audience: "incidentd"}, model.SystemClock{}); err == nil {
		t.Errorf("an issuer without discovery accepted")
	}
}
