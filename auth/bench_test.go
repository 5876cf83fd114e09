package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// BenchmarkMiddleware measures what authentication plus rate limiting add to
// a request, per credential kind, against a handler that does nothing.
func BenchmarkMiddleware(b *testing.B) {
	keys := openKeysB(b)
	_, secret, err := keys.IssueAPIKey(b.Context(), model.APIKeyIssue{TenantID: "acme", Name: "b", Scopes: []model.Scope{model.ScopeRead}})
	if err != nil {
		b.Fatal(err)
	}
	is := apitest.NewIssuer(b)
	o, err := auth.NewOIDC(b.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd"}, model.SystemClock{})
	if err != nil {
		b.Fatal(err)
	}
	token := is.Token(map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()})
	tiers, err := auth.ParseTiers(auth.BuiltinTiers+",default=1000000000-M", nil)
	if err != nil {
		b.Fatal(err)
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	cases := []struct {
		name, header, value string
		ttl                 time.Duration
	}{
		{"none (bare handler)", "", "", 0},
		{"api key, cached", "X-API-Key", secret, time.Minute},
		{"api key, looked up (SQLite)", "X-API-Key", secret, 0},
		{"jwt RS256", "Authorization", "Bearer " + token, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := http.Handler(noop)
			if c.header != "" {
				a := &auth.Authenticator{Keys: keys, Clock: model.SystemClock{}, OIDC: o, CacheTTL: c.ttl}
				h = auth.Middleware(a, auth.NewLimiter(auth.NewMemoryStore(), tiers), func(w http.ResponseWriter, r *http.Request, err error) {
					b.Fatalf("refused: %v", err)
				})(noop)
			}
			req := httptest.NewRequest("GET", "/v1/incidents", nil)
			if c.header != "" {
				req.Header.Set(c.header, c.value)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

func openKeysB(b *testing.B) model.APIKeyStore { return openKeysTB(b) }
