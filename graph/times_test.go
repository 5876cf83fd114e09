package graph_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

type fieldError struct{ Field, Message string }

// wantFieldError expects exactly one ValidationError whose details hold field with message.
func wantFieldError(t *testing.T, r apitest.GQLResponse, field, message string) {
	t.Helper()
	if len(r.Errors) != 1 || r.Code() != "ValidationError" {
		t.Fatalf("errors %+v, want one ValidationError", r.Errors)
	}
	raw, _ := json.Marshal(r.Errors[0].Extensions["details"])
	var details []fieldError
	if err := json.Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(details, fieldError{field, message}) {
		t.Errorf("details %+v, want %s: %s", details, field, message)
	}
}

func forgeCursor(t *testing.T, c, k string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]any
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	w["k"] = k
	raw, err = json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// TestTimesOutOfRangeOverGraphQL: every time argument of the GraphQL door
// refuses a time no store holds with a ValidationError naming the field and
// writes nothing; the extremes inside the range read back exactly; the
// tenant's key, audit and incident queries still answer afterwards.
func TestTimesOutOfRangeOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("gtimes")
		key := s.Key(tenant, model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeComponentsRead,
			model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead)
		gql := func(q string, vars map[string]any) apitest.GQLResponse {
			t.Helper()
			_, r := s.GQL(key, q, vars)
			return r
		}
		inc := createGQL(t, s, key, map[string]any{"title": "a", "severity": "LOW", "occurredAt": "2024-01-15T14:30:00Z"})
		createGQL(t, s, key, map[string]any{"title": "b", "severity": "LOW", "occurredAt": "2024-01-16T14:30:00Z"})
		comp := data[struct{ ID string }](t, gql(`mutation { createComponent(input: {displayName: "API"}) { id } }`, nil), "createComponent").ID
		page := data[conn](t, gql(`{ incidents(first: 1) { pageInfo { endCursor } } }`, nil), "incidents")
		if page.PageInfo.EndCursor == nil {
			t.Fatal("no cursor")
		}
		cursor := *page.PageInfo.EndCursor

		type counts struct{ keys, incidents, audit, maintenance int }
		snapshot := func() counts {
			var c counts
			r := gql(`{ apiKeys { id } incidents(first: 100) { totalCount } auditEvents(first: 100) { nodes { id } } maintenance { id } }`, nil)
			c.keys = len(data[[]json.RawMessage](t, r, "apiKeys"))
			c.incidents = data[conn](t, r, "incidents").TotalCount
			c.audit = len(data[struct{ Nodes []json.RawMessage }](t, r, "auditEvents").Nodes)
			c.maintenance = len(data[[]json.RawMessage](t, r, "maintenance"))
			return c
		}
		before := snapshot()

		msg := func(field string) string { return field + " must be between years 0001 and 9999" }
		cases := []struct{ field, query string }{
			{"occurredAt", `mutation($t: Time!) { createIncident(input: {title: "x", severity: LOW, occurredAt: $t}) { id } }`},
			{"occurredAt", `mutation($id: ID!, $t: Time) { updateIncident(id: $id, input: {occurredAt: $t}) { id } }`},
			{"resolvedAt", `mutation($id: ID!, $t: Time) { updateIncident(id: $id, input: {resolvedAt: $t}) { id } }`},
			{"startsAt", `mutation($c: ID!, $t: Time!) { createMaintenance(input: {description: "m", startsAt: $t, endsAt: "` + apitest.LastTime + `", components: [$c]}) { id } }`},
			{"endsAt", `mutation($c: ID!, $t: Time!) { createMaintenance(input: {description: "m", startsAt: "` + apitest.FirstTime + `", endsAt: $t, components: [$c]}) { id } }`},
			{"fromOccurredAt", `query($t: Time) { incidents(filter: {fromOccurredAt: $t}) { totalCount } }`},
			{"toOccurredAt", `query($t: Time) { incidents(filter: {toOccurredAt: $t}) { totalCount } }`},
			{"expiresAt", `mutation($t: Time) { createApiKey(input: {name: "k", scopes: ["incidents:read"], expiresAt: $t}) { key } }`},
			{"from", `query($t: Time) { auditEvents(filter: {from: $t}) { nodes { id } } }`},
			{"to", `query($t: Time) { auditEvents(filter: {to: $t}) { nodes { id } } }`},
		}
		for _, bad := range apitest.BadTimes {
			t.Run(bad, func(t *testing.T) {
				s := s.With(t)
				for _, c := range cases {
					_, r := s.GQL(key, c.query, map[string]any{"t": bad, "id": inc.ID, "c": comp})
					wantFieldError(t, r, c.field, msg(c.field))
				}
				forged := forgeCursor(t, cursor, bad)
				_, r := s.GQL(key, `query($c: String) { incidents(first: 1, after: $c) { totalCount } }`, map[string]any{"c": forged})
				wantFieldError(t, r, "after", "after is not a cursor of this connection")
				_, r = s.GQL(key, `query($c: String) { incidents(last: 1, before: $c) { totalCount } }`, map[string]any{"c": forged})
				wantFieldError(t, r, "before", "before is not a cursor of this connection")
			})
		}
		if after := snapshot(); after != before {
			t.Errorf("refusals wrote: %+v -> %+v", before, after)
		}

		// The extremes inside the range are accepted and read back exactly.
		type keyTimes struct {
			ID        string
			ExpiresAt *string
		}
		for _, sent := range []string{apitest.LastTime, apitest.LastTimeZoned} {
			r := gql(`mutation($t: Time) { createApiKey(input: {name: "far", scopes: ["incidents:read"], expiresAt: $t}) { key apiKey { id expiresAt } } }`, map[string]any{"t": sent})
			created := data[struct {
				Key    string
				APIKey keyTimes `json:"apiKey"`
			}](t, r, "createApiKey")
			got := data[keyTimes](t, gql(`query($id: ID!) { apiKey(id: $id) { id expiresAt } }`, map[string]any{"id": created.APIKey.ID}), "apiKey")
			if created.APIKey.ExpiresAt == nil || *created.APIKey.ExpiresAt != apitest.LastTime || got.ExpiresAt == nil || *got.ExpiresAt != apitest.LastTime {
				t.Errorf("expiresAt %s: created %v, read %v", sent, created.APIKey.ExpiresAt, got.ExpiresAt)
			}
			if st, r := s.GQL(created.Key, `{ incidents { totalCount } }`, nil); st != 200 || len(r.Errors) > 0 {
				t.Errorf("the far key: %d %+v", st, r.Errors)
			}
		}
		type at struct{ ID, OccurredAt string }
		first := data[at](t, gql(`mutation($t: Time!) { createIncident(input: {title: "first", severity: LOW, occurredAt: $t}) { id occurredAt } }`,
			map[string]any{"t": apitest.FirstTime}), "createIncident")
		last := data[at](t, gql(`mutation($t: Time!) { createIncident(input: {title: "last", severity: LOW, occurredAt: $t}) { id occurredAt } }`,
			map[string]any{"t": apitest.LastTimeZoned}), "createIncident")
		if first.OccurredAt != apitest.FirstTime || last.OccurredAt != apitest.LastTime {
			t.Errorf("occurredAt: %s, %s", first.OccurredAt, last.OccurredAt)
		}
		// Cursors walk across both extremes, forward and backward.
		for _, dir := range []string{"first: 1, after: $c", "last: 1, before: $c"} {
			var seen []string
			var c any
			for range 10 {
				r := gql(`query($c: String, $from: Time, $to: Time) { incidents(`+dir+`, filter: {fromOccurredAt: $from, toOccurredAt: $to}, orderBy: {field: OCCURRED_AT, direction: ASC}) {
					nodes { occurredAt } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
					map[string]any{"c": c, "from": "0001-01-01T00:00:00Z", "to": apitest.LastTimeZoned})
				p := data[struct {
					Nodes    []struct{ OccurredAt string }
					PageInfo struct {
						HasNextPage, HasPreviousPage bool
						StartCursor, EndCursor       *string
					}
				}](t, r, "incidents")
				for _, n := range p.Nodes {
					seen = append(seen, n.OccurredAt)
				}
				if dir[0] == 'f' && p.PageInfo.HasNextPage {
					c = *p.PageInfo.EndCursor
				} else if dir[0] == 'l' && p.PageInfo.HasPreviousPage {
					c = *p.PageInfo.StartCursor
				} else {
					break
				}
			}
			if len(seen) != 4 || !slices.Contains(seen, apitest.FirstTime) || !slices.Contains(seen, apitest.LastTime) {
				t.Errorf("%s walk: %v", dir, seen)
			}
		}
		audit := data[struct{ Nodes []json.RawMessage }](t, gql(`query($from: Time, $to: Time) { auditEvents(first: 100, filter: {from: $from, to: $to}) { nodes { id } } }`,
			map[string]any{"from": "0001-01-01T00:00:00Z", "to": apitest.LastTimeZoned}), "auditEvents")
		if len(audit.Nodes) < 6 {
			t.Errorf("audit over the whole range: %d events", len(audit.Nodes))
		}
		// The tenant's queries still answer, on both doors.
		snapshot()
		for _, path := range []string{"/v1/api-keys", "/v1/audit-events", "/v1/incidents", "/v1/incidents/" + first.ID, "/v1/incidents/" + last.ID} {
			s.Do("GET", path, key, nil).Expect(t, 200)
		}
	})
}

// TestRotationOverlapOverGraphQL: overlapSeconds is bounded before it
// becomes a duration (18446744074 s used to wrap to 0.29 s and pass), and
// only for a caller that may rotate at all.
func TestRotationOverlapOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("grot")
		admin := s.Key(tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		_, r := s.GQL(admin, `mutation { createApiKey(input: {name: "r", scopes: ["incidents:read"]}) { apiKey { id } } }`, nil)
		id := data[struct {
			APIKey struct{ ID string } `json:"apiKey"`
		}](t, r, "createApiKey").APIKey.ID
		rotate := `mutation($id: ID!, $n: Int) { rotateApiKey(id: $id, overlapSeconds: $n) { apiKey { id } } }`
		for _, n := range []int64{18446744074, 9223372036854775807, -9223372036854775808, -1, 2592001} {
			_, r := s.GQL(admin, rotate, map[string]any{"id": id, "n": n})
			wantFieldError(t, r, "overlapSeconds", "overlapSeconds must be between 0 and 2592000 (30 days)")
		}
		// Without apikeys:admin the scope is refused first, whatever the overlap.
		if _, r := s.GQL(s.Key(tenant, model.ScopeWrite), rotate, map[string]any{"id": id, "n": 18446744074}); r.Code() != "Forbidden" {
			t.Errorf("without the scope: %+v", r.Errors)
		}
		got := data[struct{ ExpiresAt, RevokedAt *string }](t, func() apitest.GQLResponse {
			_, r := s.GQL(admin, `query($id: ID!) { apiKey(id: $id) { expiresAt revokedAt } }`, map[string]any{"id": id})
			return r
		}(), "apiKey")
		if got.ExpiresAt != nil || got.RevokedAt != nil {
			t.Fatalf("refused rotations changed the key: %+v", got)
		}
		_, r = s.GQL(admin, rotate, map[string]any{"id": id, "n": 2592000})
		data[json.RawMessage](t, r, "rotateApiKey")
	})
}
