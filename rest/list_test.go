package rest_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// seedList creates n incidents with varied fields; occurredAt values repeat
// so that id tiebreaks are exercised.
func seedList(t *testing.T, s *apitest.Server, key string, n int) []incident {
	t.Helper()
	services := []string{"api-gateway", "user-service", "billing"}
	words := []string{"Database timeout", "Gateway 503", "disk full", "DNS failure", "Cert expiry"}
	var out []incident
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		body := map[string]any{
			"title":      fmt.Sprintf("%s #%02d", words[i%len(words)], i),
			"severity":   model.Severities[i%4],
			"status":     model.Statuses[(i/4)%4],
			"occurredAt": base.Add(time.Duration(i%7) * time.Hour).Format(time.RFC3339),
			"tags":       []string{"t"},
		}
		if i%5 != 4 {
			body["service"] = services[i%3]
		}
		if i%2 == 0 {
			body["description"] = "Connection pool EXHAUSTED 100%_done"
		}
		out = append(out, create(t, s, key, body))
	}
	return out
}

func listAll(t *testing.T, s *apitest.Server, key, query string, limit int) ([]incident, int) {
	return listFrom(t, s, key, query, limit, "")
}

// listFrom walks the cursor chain of query from cursor (empty: the start).
func listFrom(t *testing.T, s *apitest.Server, key, query string, limit int, cursor string) ([]incident, int) {
	t.Helper()
	var ids []incident
	total := -1
	for page := 0; ; page++ {
		q := query + fmt.Sprintf("&limit=%d", limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		res := s.Do("GET", "/v1/incidents?"+strings.TrimPrefix(q, "&"), key, nil)
		if res.Status != 200 {
			t.Fatalf("%s: %d %s", q, res.Status, res.Body)
		}
		var l list
		res.JSON(t, &l)
		if total >= 0 && l.Pagination.TotalCount != total {
			t.Errorf("totalCount moved from %d to %d", total, l.Pagination.TotalCount)
		}
		total = l.Pagination.TotalCount
		ids = append(ids, l.Data...)
		if l.Pagination.HasMore != (l.Pagination.NextCursor != nil) {
			t.Fatalf("hasMore %v but nextCursor %v", l.Pagination.HasMore, l.Pagination.NextCursor)
		}
		if !l.Pagination.HasMore {
			return ids, total
		}
		cursor = *l.Pagination.NextCursor
		if page > 1000 {
			t.Fatal("cursor walk does not end")
		}
	}
}

func less(a, b incident, field string) int {
	var c int
	switch field {
	case "severity":
		c = model.Severity(a.Severity).Rank() - model.Severity(b.Severity).Rank()
	case "status":
		c = model.Status(a.Status).Rank() - model.Status(b.Status).Rank()
	case "title":
		c = strings.Compare(a.Title, b.Title)
	case "createdAt":
		c = compareTimes(a.CreatedAt, b.CreatedAt)
	case "updatedAt":
		c = compareTimes(a.UpdatedAt, b.UpdatedAt)
	default:
		c = compareTimes(a.OccurredAt, b.OccurredAt)
	}
	if c == 0 {
		c = strings.Compare(a.ID, b.ID)
	}
	return c
}

func compareTimes(a, b string) int {
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		panic(err) // the API wrote a time the contract does not allow
	}
	tb, err := time.Parse(time.RFC3339Nano, b)
	if err != nil {
		panic(err)
	}
	return ta.Compare(tb)
}

func TestListSortsAndCursors(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("l"), rw...)
		all := seedList(t, s, key, 37)
		for _, field := range []string{"occurredAt", "createdAt", "updatedAt", "severity", "status", "title"} {
			for _, dir := range []string{"asc", "desc"} {
				t.Run(field+":"+dir, func(t *testing.T) {
					s := s.With(t)
					want := slices.Clone(all)
					slices.SortFunc(want, func(a, b incident) int {
						if dir == "desc" {
							return less(b, a, field)
						}
						return less(a, b, field)
					})
					for _, limit := range []int{1, 5, 100} {
						got, total := listAll(t, s, key, "sort="+field+":"+dir, limit)
						if total != len(all) || !sameIDs(got, want) {
							t.Fatalf("limit %d: total %d, order\n got %v\nwant %v", limit, total, ids(got), ids(want))
						}
					}
					// Offset pages give the same order.
					var l list
					s.Do("GET", "/v1/incidents?sort="+field+":"+dir+"&limit=10&offset=10", key, nil).JSON(t, &l)
					if !sameIDs(l.Data, want[10:20]) || l.Pagination.Offset != 10 || !l.Pagination.HasMore || l.Pagination.TotalCount != 37 {
						t.Errorf("offset page: %v want %v (%+v)", ids(l.Data), ids(want[10:20]), l.Pagination)
					}
				})
			}
		}
		t.Run("default sort is occurredAt:desc", func(t *testing.T) {
			s := s.With(t)
			var l list
			s.Do("GET", "/v1/incidents", key, nil).JSON(t, &l)
			want := slices.Clone(all)
			slices.SortFunc(want, func(a, b incident) int { return less(b, a, "occurredAt") })
			if !sameIDs(l.Data, want[:20]) || l.Pagination.Limit != 20 || l.Pagination.Offset != 0 || !l.Pagination.HasMore {
				t.Errorf("default list %+v", l.Pagination)
			}
		})
		t.Run("cursor stable under inserts", func(t *testing.T) {
			s := s.With(t)
			res := s.Do("GET", "/v1/incidents?sort=createdAt:asc&limit=10", key, nil)
			var first list
			res.JSON(t, &first)
			for range 3 {
				create(t, s, key, map[string]any{"title": "late", "severity": "low", "occurredAt": "2024-01-01T03:00:00Z"})
			}
			rest, _ := listFrom(t, s, key, "sort=createdAt:asc", 10, *first.Pagination.NextCursor)
			got := append(first.Data, rest...)
			if len(got) != 40 || !sameIDs(got[:37], sortedBy(all, "createdAt")) {
				t.Errorf("cursor walk across inserts: %d items", len(got))
			}
		})
		t.Run("cursor misuse", func(t *testing.T) {
			s := s.With(t)
			var l list
			s.Do("GET", "/v1/incidents?severity=low&limit=2", key, nil).JSON(t, &l)
			c := url.QueryEscape(*l.Pagination.NextCursor)
			for _, q := range []string{"severity=low&offset=2&cursor=" + c, "severity=high&cursor=" + c, "cursor=" + c,
				"severity=low&sort=title:asc&cursor=" + c, "severity=low&cursor=" + c[:len(c)-4]} {
				wantProblem(t, s.Do("GET", "/v1/incidents?"+q, key, nil), 400, "ValidationError")
			}
			if res := s.Do("GET", "/v1/incidents?severity=low&limit=7&cursor="+c, key, nil); res.Status != 200 {
				t.Errorf("a cursor may change the limit: %d", res.Status)
			}
		})
	})
}

func sortedBy(all []incident, field string) []incident {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b incident) int { return less(a, b, field) })
	return out
}

func ids(l []incident) []string {
	out := make([]string, len(l))
	for i, inc := range l {
		out[i] = inc.ID
	}
	return out
}

func sameIDs(a, b []incident) bool { return slices.Equal(ids(a), ids(b)) }

func TestListFilters(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("f"), rw...)
		all := seedList(t, s, key, 40)
		other := s.Key(apitest.Tenant("f2"), rw...)
		seedList(t, s, other, 5)
		match := func(pred func(incident) bool) []incident {
			var out []incident
			for _, inc := range all {
				if pred(inc) {
					out = append(out, inc)
				}
			}
			return sortedBy(out, "id")
		}
		in := func(t0, t1 string) func(incident) bool {
			return func(i incident) bool {
				return (t0 == "" || compareTimes(i.OccurredAt, t0) >= 0) && (t1 == "" || compareTimes(i.OccurredAt, t1) <= 0)
			}
		}
		cases := map[string]func(incident) bool{
			"status=open":                         func(i incident) bool { return i.Status == "open" },
			"status=open,investigating":           func(i incident) bool { return i.Status == "open" || i.Status == "investigating" },
			"status=open&status=closed":           func(i incident) bool { return i.Status == "open" || i.Status == "closed" },
			"severity=critical":                   func(i incident) bool { return i.Severity == "critical" },
			"severity=high&status=closed":         func(i incident) bool { return i.Severity == "high" && i.Status == "closed" },
			"service=billing":                     func(i incident) bool { return i.Service != nil && *i.Service == "billing" },
			"service=nope":                        func(incident) bool { return false },
			"keyword=database":                    func(i incident) bool { return strings.Contains(strings.ToLower(i.Title), "database") },
			"keyword=exhausted":                   func(i incident) bool { return i.Description != nil },
			"keyword=" + url.QueryEscape("100%_"): func(i incident) bool { return i.Description != nil },
			"keyword=" + url.QueryEscape("%"):     func(i incident) bool { return i.Description != nil },
			"keyword=_":                           func(i incident) bool { return i.Description != nil },
			"keyword=GATEWAY&severity=low":        func(i incident) bool { return strings.Contains(i.Title, "Gateway") && i.Severity == "low" },
			"fromOccurredAt=2024-01-01T03:00:00Z": in("2024-01-01T03:00:00Z", ""),
			"toOccurredAt=2024-01-01T03:00:00Z":   in("", "2024-01-01T03:00:00Z"),
			"fromOccurredAt=2024-01-01T03:00:00%2B01:00&toOccurredAt=2024-01-01T05:00:00Z": in("2024-01-01T02:00:00Z", "2024-01-01T05:00:00Z"),
			"keyword=&service=": func(incident) bool { return true },
			"keyword=Database&fromOccurredAt=2024-01-01T02:00:00Z": func(i incident) bool {
				return strings.Contains(i.Title, "Database") && in("2024-01-01T02:00:00Z", "")(i)
			},
		}
		for q, pred := range cases {
			t.Run(q, func(t *testing.T) {
				s := s.With(t)
				want := match(pred)
				for _, limit := range []int{3, 100} {
					got, total := listAll(t, s, key, q, limit)
					if total != len(want) || !sameIDs(sortedBy(got, "id"), want) {
						t.Errorf("limit %d: total %d, got %d items, want %d", limit, total, len(got), len(want))
					}
				}
				// An offset page past the first reports the same exact total (the counted path).
				var l list
				s.Do("GET", "/v1/incidents?"+q+"&limit=1&offset=1", key, nil).JSON(t, &l)
				if l.Pagination.TotalCount != len(want) {
					t.Errorf("offset total %d, want %d", l.Pagination.TotalCount, len(want))
				}
			})
		}
		t.Run("cached counts follow writes", func(t *testing.T) {
			s := s.With(t)
			count := func() int {
				var l list
				s.Do("GET", "/v1/incidents?keyword=database&limit=1&offset=1", key, nil).JSON(t, &l)
				return l.Pagination.TotalCount
			}
			n := count()
			if count() != n {
				t.Fatal("count unstable")
			}
			inc := create(t, s, key, map[string]any{"title": "another database fire", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
			if got := count(); got != n+1 {
				t.Errorf("after create: %d, want %d", got, n+1)
			}
			s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{"title": "renamed"}).Expect(t, 200)
			if got := count(); got != n {
				t.Errorf("after rename: %d, want %d", got, n)
			}
		})
	})
}
