package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
)

func TestCORS(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{CORSOrigins: []string{"https://dash.example.com"}})
		key := s.Key(apitest.Tenant("cors"), rw...)
		res := s.Do("OPTIONS", "/v1/incidents", "", nil, "Origin", "https://dash.example.com", "Access-Control-Request-Method", "POST")
		if res.Status != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
			t.Errorf("preflight: %d %v", res.Status, res.Header)
		}
		// A browser client may send every method the API has and every
		// header it reads, and read every header it answers with.
		lacks(t, res.Header, "Access-Control-Allow-Methods", "GET", "POST", "PUT", "PATCH", "DELETE")
		lacks(t, res.Header, "Access-Control-Allow-Headers", "Authorization", "X-API-Key", "Content-Type", "Last-Event-ID", "X-Request-Id")
		res = s.Do("GET", "/v1/incidents", key, nil, "Origin", "https://dash.example.com")
		if res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
			t.Errorf("simple request: %v", res.Header)
		}
		lacks(t, res.Header, "Access-Control-Expose-Headers", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "X-Request-Id", "Location")
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("the answer depends on Origin but does not say so: %v", res.Header)
		}
		res = s.Do("GET", "/v1/incidents", key, nil, "Origin", "https://evil.example.com")
		if res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("foreign origin allowed: %v", res.Header)
		}
		// Without configured origins, no CORS at all.
		plain := apitest.Start(t, b, apitest.Config{})
		if res := plain.Do("GET", "/v1/incidents", plain.Key(apitest.Tenant("c2"), rw...), nil, "Origin", "https://dash.example.com"); res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("CORS without configuration: %v", res.Header)
		}
	})
}

// lacks fails for each of want not listed in the comma-separated header.
func lacks(t *testing.T, h http.Header, name string, want ...string) {
	t.Helper()
	listed := map[string]bool{}
	for _, v := range strings.Split(h.Get(name), ",") {
		listed[strings.ToLower(strings.TrimSpace(v))] = true
	}
	for _, w := range want {
		if !listed[strings.ToLower(w)] {
			t.Errorf("%s lacks %s: %q", name, w, h.Get(name))
		}
	}
}
