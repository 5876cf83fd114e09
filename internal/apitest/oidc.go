package apitest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

// Issuer is a real OIDC issuer served in-process: discovery document, JWKS
// and RS256-signed tokens.
type Issuer struct {
	URL    string
	Key    *rsa.PrivateKey
	KID    string
	Server *oidctest.Server
	web    *httptest.Server
}

func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{Key: key, KID: "k1", Server: &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}}
	is.web = httptest.NewServer(is.Server)
	t.Cleanup(is.web.Close)
	is.Server.SetIssuer(is.web.URL)
	is.URL = is.web.URL
	return is
}

// Token signs claims; missing standard claims get valid defaults.
func (is *Issuer) Token(claims map[string]any) string {
	now := time.Now()
	base := map[string]any{"iss": is.URL, "aud": "incidentd", "sub": "user_1", "tenant_id": "acme",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "incidents:read read"}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	raw, err := json.Marshal(base)
	if err != nil {
		panic(err) // claims built by tests are always JSON
	}
	return oidctest.SignIDToken(is.Key, is.KID, "RS256", string(raw))
}
