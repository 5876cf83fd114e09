package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// limitMessage is the page-size complaint every door must give, built from
// the model's range so that this test follows the one definition.
func limitMessage(arg string) string {
	return fmt.Sprintf("%s must be between 1 and %d", arg, model.MaxLimit)
}

// wantDetail fails unless res is a 400 ValidationError whose only detail is
// field: message.
func wantDetail(t *testing.T, res *apitest.Response, field, message string) {
	t.Helper()
	p := wantProblem(t, res, 400, "ValidationError")
	if len(p.Details) != 1 || p.Details[0].Field != field || p.Details[0].Message != message {
		t.Errorf("details %+v, want one {%s: %s}", p.Details, field, message)
	}
}

// opens reports the status an event stream answers with, then leaves: a
// 200 means the query was accepted (the stream itself is other tests' job).
func opens(t *testing.T, s *apitest.Server, path, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestListParameters holds every list route to the one query-string rule
// (rest/query.go): unknown names and repeated scalars are the same 400
// everywhere, limit has one range, message and default, empty values count
// as absent, and a list takes repeats and commas alike.
func TestListParameters(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("params")
		key := s.Key(tenant, model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeComponentsRead, model.ScopeComponentsWrite,
			model.ScopeAuditRead, model.ScopeAPIKeysAdmin)
		// One more of each than the default page holds.
		for i := range model.DefaultLimit + 1 {
			sev := []string{"low", "high"}[i%2]
			s.Do("POST", "/v1/incidents", key, map[string]any{"title": fmt.Sprint("i", i), "severity": sev,
				"occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
			labels := map[string]string{"region": "us"}
			if i == 0 {
				labels = map[string]string{"region": "eu,west", "tier": "gold"}
			}
			s.Do("POST", "/v1/components", key, map[string]any{"displayName": fmt.Sprint("c", i), "labels": labels}).Expect(t, 201)
		}

		var one struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/incidents?limit=1", key, nil).JSON(t, &one)
		inc := "/v1/incidents/" + one.Data[0].ID
		routes := []struct {
			path   string
			scalar string // a scalar parameter the route takes; "" when it takes none
			paged  bool   // limit/offset pages
			stream bool   // server-sent events: a success is a stream
		}{
			{path: "/v1/incidents", scalar: "keyword", paged: true},
			{path: "/v1/components", scalar: "name", paged: true},
			{path: "/v1/component_status", scalar: "name", paged: true},
			{path: "/v1/audit-events", scalar: "actor", paged: true},
			{path: "/v1/incidents/events", scalar: "after", stream: true},
			{path: "/v1/components/events", stream: true},
			{path: "/v1/api-keys"},
			{path: "/v1/impact-types"},
			{path: "/v1/severities"},
			{path: "/v1/phases"},
			{path: "/v1/maintenance"},
			{path: "/v1/status"},
			{path: inc + "/updates"},
			{path: inc + "/affects"},
		}
		for _, rt := range routes {
			t.Run(rt.path, func(t *testing.T) {
				s := s.With(t)
				ok := func(query string) {
					t.Helper()
					if rt.stream {
						if st := opens(t, s, rt.path+query, key); st != 200 {
							t.Errorf("%s: %d", query, st)
						}
						return
					}
					s.Do("GET", rt.path+query, key, nil).Expect(t, 200)
				}
				wantDetail(t, s.Do("GET", rt.path+"?bogus=1", key, nil), "bogus", "unknown query parameter bogus")
				wantDetail(t, s.Do("GET", rt.path+"?bogus=", key, nil), "bogus", "unknown query parameter bogus")
				ok("")
				if rt.scalar != "" {
					q := "?" + rt.scalar + "=x&" + rt.scalar + "=y"
					wantDetail(t, s.Do("GET", rt.path+q, key, nil), rt.scalar, rt.scalar+" must be given once")
					ok("?" + rt.scalar + "=") // empty: absent
				}
				if !rt.paged {
					return
				}
				for _, v := range []string{"0", "101", "abc", "-1", "1.5"} {
					wantDetail(t, s.Do("GET", rt.path+"?limit="+v, key, nil), "limit", limitMessage("limit"))
				}
				wantDetail(t, s.Do("GET", rt.path+"?limit=1&limit=2", key, nil), "limit", "limit must be given once")
				var page struct {
					Data       []map[string]any
					Pagination struct{ Limit int }
				}
				// Every route holds more than the default page (the trail too:
				// it has the creations).
				for query, want := range map[string]int{"": model.DefaultLimit, "?limit=": model.DefaultLimit, "?limit=&limit=5": 5} {
					s.Do("GET", rt.path+query, key, nil).JSON(t, &page)
					if page.Pagination.Limit != want || len(page.Data) != want {
						t.Errorf("%q: limit %d, %d items, want %d", query, page.Pagination.Limit, len(page.Data), want)
					}
				}
				s.Do("GET", rt.path+"?limit=100", key, nil).JSON(t, &page)
				if page.Pagination.Limit != model.MaxLimit {
					t.Errorf("limit=100: %d", page.Pagination.Limit)
				}
			})
		}

		// Lists: commas and repeats agree; a quoted value keeps its comma.
		total := func(query string) int {
			t.Helper()
			var page struct{ Pagination struct{ TotalCount int } }
			s.Do("GET", query, key, nil).JSON(t, &page)
			return page.Pagination.TotalCount
		}
		for query, want := range map[string]int{
			"/v1/incidents?severity=low":                                     11,
			"/v1/incidents?severity=low,high":                                21,
			"/v1/incidents?severity=low&severity=high":                       21,
			"/v1/incidents?severity=low,%20high&severity=":                   21,
			"/v1/incidents?severity=%22low%22":                               11,
			"/v1/components?label=%22region:eu,west%22":                      1,
			"/v1/components?label=%22region:eu,west%22,tier:gold":            1,
			"/v1/components?label=%22region:eu,west%22&label=tier:gold":      1,
			"/v1/components?label=region:us&label=tier:gold":                 0,
			"/v1/components?label=region:us":                                 20,
			"/v1/component_status?name=c1":                                   11, // c1, c10..c19
			"/v1/incidents?service=" + url.QueryEscape("a,b") + "&limit=1":   0,  // a scalar is never split
			"/v1/components?name=" + url.QueryEscape("c1,c2") + "&limit=100": 0,
		} {
			if got := total(query); got != want {
				t.Errorf("%s: totalCount %d, want %d", query, got, want)
			}
		}
		// Unquoted, region:eu,west is two labels, and "west" is no key:value.
		wantDetail(t, s.Do("GET", "/v1/components?label=region:eu,west", key, nil), "label", "label must be key:value")
		for _, q := range []string{"service=%22Billing,%20EU%22,web", "service=Billing&service=web", "status=open,closed&status=resolved"} {
			if st := opens(t, s, "/v1/incidents/events?"+q, key); st != 200 {
				t.Errorf("events %s: %d", q, st)
			}
		}
		if st := opens(t, s, "/v1/components/events?component=cmp_a&component=cmp_b,cmp_c", key); st != 200 {
			t.Errorf("component events: %d", st)
		}
		p := wantProblem(t, s.Do("GET", "/v1/incidents/events?service=%22Billing", key, nil), 400, "ValidationError")
		if len(p.Details) != 1 || p.Details[0].Field != "service" {
			t.Errorf("unterminated quote: %+v", p.Details)
		}

		// GraphQL: the same default and the same message, named after the argument.
		for query, field := range map[string]string{
			`{ incidents { nodes { id } } }`:   "incidents",
			`{ components { nodes { id } } }`:  "components",
			`{ auditEvents { nodes { id } } }`: "auditEvents",
		} {
			_, r := s.GQL(key, query, nil)
			var out map[string]struct{ Nodes []any }
			if len(r.Errors) > 0 {
				t.Fatalf("%s: %+v", query, r.Errors)
			}
			if err := json.Unmarshal(r.Data, &out); err != nil || len(out[field].Nodes) != model.DefaultLimit {
				t.Errorf("%s: %d nodes (%v), want the default %d", query, len(out[field].Nodes), err, model.DefaultLimit)
			}
		}
		for _, n := range []int{0, model.MaxLimit + 1} {
			for query, arg := range map[string]string{
				`query($n: Int) { incidents(limit: $n) { totalCount } }`:     "limit",
				`query($n: Int) { incidents(first: $n) { totalCount } }`:     "first",
				`query($n: Int) { incidents(last: $n) { totalCount } }`:      "last",
				`query($n: Int) { components(limit: $n) { totalCount } }`:    "limit",
				`query($n: Int) { auditEvents(first: $n) { nodes { id } } }`: "first",
			} {
				_, r := s.GQL(key, query, map[string]any{"n": n})
				if r.Code() != "ValidationError" || len(r.Errors) != 1 {
					t.Errorf("%s n=%d: %+v", query, n, r.Errors)
					continue
				}
				details, _ := r.Errors[0].Extensions["details"].([]any)
				d, _ := firstOf(details).(map[string]any)
				if len(details) != 1 || d["field"] != arg || d["message"] != limitMessage(arg) {
					t.Errorf("%s n=%d: details %v, want {%s: %s}", query, n, details, arg, limitMessage(arg))
				}
			}
		}
	})
}

func firstOf(xs []any) any {
	if len(xs) == 0 {
		return nil
	}
	return xs[0]
}
