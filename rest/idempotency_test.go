package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestIdempotentCreates: twenty concurrent identical creates with one key
// make one incident and twenty identical answers; the same key with
// another body is a 422; keys are per credential; a refused create is
// kept as refused.
func TestIdempotentCreates(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("idem")
		key := s.Key(ten, model.ScopeIncidentsWrite)
		other := s.Key(ten, model.ScopeIncidentsWrite)
		body := map[string]any{"title": "once", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}
		var (
			mu      sync.Mutex
			answers []*apitest.Response
			errs    []error
			wg      sync.WaitGroup
		)
		for range 20 {
			wg.Go(func() {
				res, err := s.Try("POST", "/v1/incidents", key, body, "Idempotency-Key", "create-once")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				answers = append(answers, res)
			})
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		replayed := 0
		for _, a := range answers {
			if a.Status != http.StatusCreated || string(a.Body) != string(answers[0].Body) || a.Header.Get("Location") != answers[0].Header.Get("Location") {
				t.Errorf("answer %d %s %s, first %s", a.Status, a.Header.Get("Location"), a.Body, answers[0].Body)
			}
			if a.Header.Get("Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		if replayed != 19 {
			t.Errorf("%d of 20 answers replayed, want 19", replayed)
		}
		var list struct{ Data []struct{ Title string } }
		s.Do("GET", "/v1/incidents", key, nil).JSON(t, &list)
		if len(list.Data) != 1 {
			t.Errorf("%d incidents made", len(list.Data))
		}
		changed := map[string]any{"title": "twice", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}
		wantProblem(t, s.Do("POST", "/v1/incidents", key, changed, "Idempotency-Key", "create-once"), 422, "BusinessRuleViolation")
		// Another credential's key space is its own.
		s.Do("POST", "/v1/incidents", other, changed, "Idempotency-Key", "create-once").Expect(t, 201)
		// A refused create is kept as it was answered.
		bad := map[string]any{"title": "", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}
		first := s.Do("POST", "/v1/incidents", key, bad, "Idempotency-Key", "bad-one")
		again := s.Do("POST", "/v1/incidents", key, bad, "Idempotency-Key", "bad-one")
		if first.Status != 400 || again.Status != 400 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("refused create: %d %d", first.Status, again.Status)
		}
		wantProblem(t, s.Do("POST", "/v1/incidents", key, body, "Idempotency-Key", "bad key with spaces"), 400, "ValidationError")
		for i := range 2 {
			s.Do("POST", "/v1/incidents", key, map[string]any{"title": fmt.Sprint("no key ", i), "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
		}
	})
}

// TestIdempotentSecretsNotKept: a create or rotation showing a secret once
// is replayed without it (the same resource, no `key` / `secret`), as on
// GraphQL, so that the idempotency store never holds a live credential;
// the secret of the first answer is the one that works.
func TestIdempotentSecretsNotKept(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		admin := s.Key(apitest.Tenant("idsec"), model.ScopeAPIKeysAdmin, model.ScopeWebhooksAdmin, model.ScopeIncidentsRead)
		for _, c := range []struct {
			name, path, secret string
			body               any
		}{
			{"api-key", "/v1/api-keys", "key", map[string]any{"name": "ci", "scopes": []string{"incidents:read"}}},
			{"webhook", "/v1/webhooks", "secret", map[string]any{"url": "https://hooks.example.com/s", "events": []string{"incident.created"}}},
		} {
			first := s.Do("POST", c.path, admin, c.body, "Idempotency-Key", "sec-"+c.name).Expect(t, 201)
			again := s.Do("POST", c.path, admin, c.body, "Idempotency-Key", "sec-"+c.name).Expect(t, 201)
			f, a := first.Map(t), again.Map(t)
			// The replay is the kept answer, byte for byte.
			if f[c.secret] == nil || f[c.secret] == "" || a[c.secret] != nil || a["id"] != f["id"] || strings.Contains(string(again.Body), f[c.secret].(string)) ||
				again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("Location") != first.Header.Get("Location") {
				t.Errorf("%s: first %v, replay %v", c.name, f, a)
			}
			rotate := c.path + "/" + f["id"].(string) + map[string]string{"key": "/rotate", "secret": "/rotate-secret"}[c.secret]
			r1 := s.Do("POST", rotate, admin, nil, "Idempotency-Key", "rot-"+c.name).Map(t)
			r2 := s.Do("POST", rotate, admin, nil, "Idempotency-Key", "rot-"+c.name).Map(t)
			if r1[c.secret] == nil || r2[c.secret] != nil || r1["id"] != r2["id"] {
				t.Errorf("%s rotation: first %v, replay %v", c.name, r1, r2)
			}
			if c.secret == "key" {
				s.Do("GET", "/v1/incidents", f["key"].(string), nil).Expect(t, 200)
			}
		}
	})
}
