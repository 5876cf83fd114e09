package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

func TestOIDC(t *testing.T) {
	is := apitest.NewIssuer(t)
	o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd", DefaultTier: "pro"}, model.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	a := &auth.Authenticator{Keys: openKeys(t), Clock: model.SystemClock{}, OIDC: o}

	p, err := a.Authenticate(t.Context(), is.Token(map[string]any{"roles": []string{"incidents:write", "admin"}, "permissions": []string{"incidents:read"}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.TenantID != "acme" || p.ActorID != "user_1" || p.Tier != "pro" || !p.Has(model.ScopeIncidentsWrite) || len(p.Scopes) != 3 {
		t.Errorf("principal %+v", p)
	}
	p, err = a.Authenticate(t.Context(), is.Token(map[string]any{"sub": nil, "user_id": "u9", "tier": "premium", "scope": nil}))
	if err != nil {
		t.Fatal(err)
	}
	if p.ActorID != "u9" || p.Tier != "premium" || len(p.Scopes) != 0 {
		t.Errorf("user_id and tier claims: %+v", p)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return h + "." + base64.RawURLEncoding.EncodeToString([]byte(mustJSON(map[string]any{"iss": is.URL, "aud": "incidentd", "sub": "x", "tenant_id": "acme", "exp": now.Add(time.Hour).Unix()}))) + "."
	}()
	cases := map[string]string{
		"expired":         is.Token(map[string]any{"exp": now.Add(-time.Minute).Unix()}),
		"not yet valid":   is.Token(map[string]any{"nbf": now.Add(time.Hour).Unix()}),
		"wrong audience":  is.Token(map[string]any{"aud": "someone-else"}),
		"wrong issuer":    is.Token(map[string]any{"iss": is.URL + "/evil"}),
		"bad signature":   oidctest.SignIDToken(other, is.KID, "RS256", mustJSON(map[string]any{"iss": is.URL, "aud": "incidentd", "sub": "x", "tenant_id": "acme", "exp": now.Add(time.Hour).Unix()})),
		"alg none":        none,
		"hs256":           oidctest.SignIDToken([]byte("a-shared-secret-of-32-bytes-long!"), is.KID, "HS256", mustJSON(map[string]any{"iss": is.URL, "aud": "incidentd", "sub": "x", "tenant_id": "acme", "exp": now.Add(time.Hour).Unix()})),
		"missing tenant":  is.Token(map[string]any{"tenant_id": nil}),
		"garbage":         "a.b.c",
		"tampered claims": tamper(t, is.Token(nil)),
	}
	for name, tok := range cases {
		if _, err := a.Authenticate(t.Context(), tok); model.ErrorCode(err) != model.CodeUnauthorized {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Key rotation: the issuer starts signing with a new key; the verifier fetches the new JWKS.
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.Server.PublicKeys = append(is.Server.PublicKeys, oidctest.PublicKey{PublicKey: newKey.Public(), KeyID: "k2", Algorithm: "RS256"})
	is.Key, is.KID = newKey, "k2"
	if _, err := a.Authenticate(t.Context(), is.Token(nil)); err != nil {
		t.Errorf("after key rotation: %v", err)
	}

	// Without OIDC configured, a JWT is just a bad credential.
	plain := &auth.Authenticator{Keys: openKeys(t), Clock: model.SystemClock{}}
	if _, err := plain.Authenticate(t.Context(), is.Token(nil)); model.ErrorCode(err) != model.CodeUnauthorized {
		t.Errorf("JWT without OIDC: %v", err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of plain values are passed
	}
	return string(b)
}

// tamper changes the payload of a signed token without re-signing it.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["tenant_id"] = "victim"
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(mustJSON(m)))
	return strings.Join(parts, ".")
}
