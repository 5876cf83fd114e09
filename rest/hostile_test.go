package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
)

// Path segments and query values no row can hold or no parser should take.
var hostileValues = []string{
	"%00", "a%00b", "%FF", "a%FFb", "%C3", "a%2Fb", "..%2F..%2Fv1%2Fincidents", "%2F", "%E2%80%AE",
	"99999999999999999999999999", "-1", "-9223372036854775809", "1e308", "NaN", "Infinity", "0x10",
	"0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
	"%27%3B--", "%25", "_", strings.Repeat("x", 5000),
}

// Body members: every value of the wrong kind or out of any range.
var hostileMembers = []any{
	nil, "", "\x00", "a\x00b", "\uFFFD", strings.Repeat("é", 10000), -1, 0, 1e308, -1e308,
	9223372036854775807, 18446744074, 1.5, true, []any{}, []any{nil}, map[string]any{}, map[string]any{"x": "\x00"},
	"0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2024-02-30T00:00:00Z", "not a time",
}

// Whole bodies that are not what any route takes.
var hostileBodies = []string{
	``, `null`, `[]`, `"x"`, `0`, `{`, `{"a":1}{"b":2}`, `{"a":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
	"{\"title\":\"\xff\"}", `{"value":1e400}`, `{"__proto__":{}}`,
}

// TestHostileInput sends every documented route hostile path segments,
// query values and bodies, with a credential that may do everything, on
// both stores: whatever is refused is a 4xx problem, nothing answers 500,
// and no request hangs (streams must at least answer their headers).
func TestHostileInput(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rest.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("hostile")
		key := s.Key(ten, model.ScopeIncidentsWrite, model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead, model.ScopeWebhooksAdmin)
		if r := s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": true}); r.Status >= 300 {
			t.Fatalf("publish: %d %s", r.Status, r.Body)
		}

		// Real ids, so that hostile queries and bodies reach past the lookup.
		inc := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201).Map(t)["id"].(string)
		comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API"}).Expect(t, 201).Map(t)["id"].(string)
		typ := s.Do("POST", "/v1/impact-types", key, map[string]any{"displayName": "Slow"}).Expect(t, 201).Map(t)["id"].(string)
		s.Do("POST", "/v1/severities", key, map[string]any{"displayName": "Meh", "value": 10}).Expect(t, 201)
		mw := s.Do("POST", "/v1/maintenance", key, map[string]any{"description": "m", "components": []string{comp},
			"startsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "endsAt": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)}).Expect(t, 201).Map(t)["id"].(string)
		// Another key to rotate and revoke: the probes' own must live on.
		victim := s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "victim", "scopes": []string{"incidents:read"}}).Expect(t, 201).Map(t)["id"].(string)
		hook := s.Do("POST", "/v1/webhooks", key, map[string]any{"url": "https://hooks.example.com/in", "events": []string{"incident.created"}}).Expect(t, 201).Map(t)["id"].(string)
		delivery := s.Do("POST", "/v1/webhooks/"+hook+"/test", key, nil).Expect(t, 202).Map(t)["id"].(string)
		real := map[string]string{"incidents": inc, "components": comp, "impact-types": typ, "severities": "Meh",
			"maintenance": mw, "api-keys": victim, "phases": "1", "public": ten, "webhooks": hook, "deliveries": delivery}

		param := regexp.MustCompile(`\{[a-z]+\}`)
		n := 0
		statuses := map[int]int{}
		send := func(method, path, body string, header ...string) {
			t.Helper()
			n++
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var rd io.Reader
			if body != "" || method == "POST" || method == "PATCH" || method == "PUT" {
				rd = strings.NewReader(body)
			}
			req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			req.Header.Set("X-API-Key", key)
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %.200s: %v", method, path, err)
				return
			}
			defer res.Body.Close()
			statuses[res.StatusCode]++
			if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
				return // a stream that opened: its headers came, it does not hang
			}
			raw, err := io.ReadAll(res.Body)
			if err != nil {
				t.Errorf("%s %.200s: read: %v", method, path, err)
				return
			}
			if res.StatusCode >= 500 {
				t.Errorf("%s %.200s body %.200q: %d %.300s", method, path, body, res.StatusCode, raw)
				return
			}
			if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %.200s: %d with %q", method, path, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}

		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				if method == "DELETE" {
					continue // below, last, so that the other probes still find what they look up
				}
				// Hostile path segments, one parameter at a time.
				for _, v := range hostileValues {
					if param.MatchString(path) {
						send(method, param.ReplaceAllString(path, v), "{}")
					}
				}
				concrete := concretePath(path, real)
				// Hostile query values, one parameter at a time.
				for _, p := range append(item.Parameters, op.Parameters...) {
					if p.Value == nil || p.Value.In != "query" {
						continue
					}
					for _, v := range hostileValues {
						send(method, concrete+"?"+p.Value.Name+"="+v, "")
						send(method, concrete+"?"+p.Value.Name+"="+v+"&"+p.Value.Name+"=1", "")
					}
				}
				// Hostile bodies, whole and one member at a time.
				if op.RequestBody == nil || op.RequestBody.Value == nil {
					continue
				}
				for _, body := range hostileBodies {
					send(method, concrete, body)
				}
				mt := op.RequestBody.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
					continue
				}
				for name := range mt.Schema.Value.Properties {
					for _, v := range hostileMembers {
						raw, err := json.Marshal(map[string]any{name: v})
						if err != nil {
							t.Fatal(err)
						}
						send(method, concrete, string(raw))
					}
				}
			}
		}
		for path, item := range doc.Paths.Map() {
			if item.Delete == nil {
				continue
			}
			for _, v := range hostileValues {
				send("DELETE", param.ReplaceAllString(path, v), "")
			}
		}
		// Resume points no stream handed out.
		for _, v := range []string{"\x01", "\xff", "99999999999999999999", "-1", "evt_" + strings.Repeat("A", 300), "evt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			send("GET", "/v1/incidents/events?after="+url.QueryEscape(v), "")
			send("GET", "/v1/components/events?after="+url.QueryEscape(v), "")
			if strings.IndexFunc(v, func(r rune) bool { return r < ' ' || r == utf8.RuneError }) < 0 { // not sendable as a header
				send("GET", "/v1/incidents/events", "", "Last-Event-ID", v)
			}
		}
		t.Logf("%d hostile requests, by status: %v", n, statuses)
		if statuses[http.StatusUnauthorized] > 0 {
			t.Errorf("%d requests were refused as unauthenticated: the probes' key stopped working, so they tested nothing", statuses[http.StatusUnauthorized])
		}
		if n < 1000 {
			t.Errorf("only %d requests: the document's routes were not walked", n)
		}
	})
}

// concretePath fills a documented path's parameters with real values.
func concretePath(path string, real map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			v, ok := real[parts[i-1]]
			if !ok {
				panic(fmt.Sprintf("no real value for %s in %s", p, path))
			}
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}
