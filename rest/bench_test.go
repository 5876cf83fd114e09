package rest_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
)

// BenchmarkAPI measures whole requests through a real HTTP server (auth,
// limiter, handler, store) on each backend.
func BenchmarkAPI(b *testing.B) {
	for _, be := range apitest.Backends(b) {
		s := apitest.Start(b, be, apitest.Config{RateLimit: "1000000000-M"})
		key := s.Key(apitest.Tenant("bench"), rw...)
		var id string
		for i := range 500 {
			res := s.Do("POST", "/v1/incidents", key, map[string]any{"title": fmt.Sprintf("database %d", i),
				"severity": "high", "occurredAt": "2024-01-15T14:30:00Z", "service": "svc"})
			if i == 0 {
				var inc incident
				res.JSON(b, &inc)
				id = inc.ID
			}
		}
		for name, path := range map[string]string{
			"get": "/v1/incidents/" + id, "list": "/v1/incidents", "keyword": "/v1/incidents?keyword=database&offset=20",
		} {
			b.Run(be.Name+"/"+name, func(b *testing.B) {
				req, _ := http.NewRequest("GET", s.URL+path, nil)
				req.Header.Set("X-API-Key", key)
				b.ReportAllocs()
				for b.Loop() {
					res, err := http.DefaultClient.Do(req)
					if err != nil || res.StatusCode != 200 {
						b.Fatalf("%v %v", err, res)
					}
					io.Copy(io.Discard, res.Body) //nolint:errcheck
					res.Body.Close()
				}
			})
		}
	}
}
