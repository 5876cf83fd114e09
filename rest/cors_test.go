package rest_test

import (
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
)

func TestCORS(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{CORSOrigins: []string{"https://dash.example.com"}})
		key := s.Key(apitest.Tenant("cors"), rw...)
		res := s.Do("OPTIONS", "/v1/incidents", "", nil, "Origin", "https://dash.example.com", "Access-Control-Request-Method", "POST")
		if res.Status != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" ||
			res.Header.Get("Access-Control-Allow-Headers") == "" {
			t.Errorf("preflight: %d %v", res.Status, res.Header)
		}
		res = s.Do("GET", "/v1/incidents", key, nil, "Origin", "https://dash.example.com")
		if res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" || res.Header.Get("Access-Control-Expose-Headers") == "" {
			t.Errorf("simple request: %v", res.Header)
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
