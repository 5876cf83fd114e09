package rest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// forgeCursor returns c with its sort key replaced by k.
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

// wantFieldProblem expects a 400 ValidationError naming exactly field with message.
func wantFieldProblem(t *testing.T, res *apitest.Response, field, message string) {
	t.Helper()
	p := wantProblem(t, res, 400, "ValidationError")
	if len(p.Details) != 1 || p.Details[0].Field != field || p.Details[0].Message != message {
		t.Errorf("details %+v, want %s: %s", p.Details, field, message)
	}
}

// TestTimesOutOfRange: every time input of the REST door refuses a time no
// store holds with a 400 naming the field and writes nothing; the extremes
// inside the range are accepted and read back exactly; afterwards every
// route of the tenant still answers.
func TestTimesOutOfRange(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("times")
		key := s.Key(tenant, model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeComponentsRead,
			model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead)
		inc := create(t, s, key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"})
		comp := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API"}).Expect(t, 201).Map(t)["id"].(string)
		var page list
		s.Do("GET", "/v1/incidents?limit=1", key, nil).JSON(t, &page)
		if len(page.Data) != 1 || page.Pagination.NextCursor != nil {
			t.Fatalf("first page %+v", page)
		}
		create(t, s, key, map[string]any{"title": "u", "severity": "low", "occurredAt": "2024-01-16T14:30:00Z"})
		s.Do("GET", "/v1/incidents?limit=1", key, nil).JSON(t, &page)
		if page.Pagination.NextCursor == nil {
			t.Fatal("no cursor")
		}
		cursor := *page.Pagination.NextCursor

		// What exists before the refusals, to show that they write nothing.
		snapshot := func() (keys, incidents, audit, maint int) {
			var kl struct{ Data []apiKey }
			s.Do("GET", "/v1/api-keys", key, nil).JSON(t, &kl)
			var il list
			s.Do("GET", "/v1/incidents?limit=100", key, nil).JSON(t, &il)
			var al struct{ Data []json.RawMessage }
			s.Do("GET", "/v1/audit-events?limit=100", key, nil).JSON(t, &al)
			var ml struct{ Data []json.RawMessage }
			s.Do("GET", "/v1/maintenance", key, nil).JSON(t, &ml)
			return len(kl.Data), il.Pagination.TotalCount, len(al.Data), len(ml.Data)
		}
		k0, i0, a0, m0 := snapshot()

		inRangeMsg := func(field string) string { return field + " must be between years 0001 and 9999" }
		window := func(starts, ends string) map[string]any {
			return map[string]any{"description": "m", "components": []string{comp}, "startsAt": starts, "endsAt": ends}
		}
		for _, bad := range apitest.BadTimes {
			t.Run(bad, func(t *testing.T) {
				s := s.With(t)
				wantFieldProblem(t, s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": bad}),
					"occurredAt", inRangeMsg("occurredAt"))
				for _, field := range []string{"occurredAt", "resolvedAt"} {
					wantFieldProblem(t, s.Do("PATCH", "/v1/incidents/"+inc.ID, key, map[string]any{field: bad}), field, inRangeMsg(field))
				}
				// Each bound of a window alone is out of range; the order rule
				// may add its own complaint, so only the named field is checked.
				for field, body := range map[string]map[string]any{"startsAt": window(bad, apitest.LastTime), "endsAt": window(apitest.FirstTime, bad)} {
					p := wantProblem(t, s.Do("POST", "/v1/maintenance", key, body), 400, "ValidationError")
					if !slices.ContainsFunc(p.Details, func(d struct {
						Field   string `json:"field"`
						Message string `json:"message"`
					}) bool {
						return d.Field == field && d.Message == inRangeMsg(field)
					}) {
						t.Errorf("maintenance %s: %+v", field, p.Details)
					}
				}
				for _, field := range []string{"fromOccurredAt", "toOccurredAt"} {
					wantFieldProblem(t, s.Do("GET", "/v1/incidents?"+field+"="+url.QueryEscape(bad), key, nil), field, inRangeMsg(field))
				}
				wantFieldProblem(t, s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "k", "scopes": []string{"incidents:read"}, "expiresAt": bad}),
					"expiresAt", inRangeMsg("expiresAt"))
				for _, field := range []string{"from", "to"} {
					wantFieldProblem(t, s.Do("GET", "/v1/audit-events?"+field+"="+url.QueryEscape(bad), key, nil), field, inRangeMsg(field))
				}
				wantFieldProblem(t, s.Do("GET", "/v1/incidents?limit=1&cursor="+forgeCursor(t, cursor, bad), key, nil),
					"cursor", "cursor is invalid: pass pagination.nextCursor unchanged")
			})
		}
		if k, i, a, m := snapshot(); k != k0 || i != i0 || a != a0 || m != m0 {
			t.Errorf("refusals wrote: keys %d->%d, incidents %d->%d, audit %d->%d, maintenance %d->%d", k0, k, i0, i, a0, a, m0, m)
		}

		// The extremes inside the range are accepted and read back exactly.
		for sent, want := range map[string]string{apitest.LastTime: apitest.LastTime, apitest.LastTimeZoned: apitest.LastTime} {
			var k apiKey
			s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "far", "scopes": []string{"incidents:read"}, "expiresAt": sent}).Expect(t, 201).JSON(t, &k)
			var got apiKey
			s.Do("GET", "/v1/api-keys/"+k.ID, key, nil).JSON(t, &got)
			if k.ExpiresAt == nil || *k.ExpiresAt != want || got.ExpiresAt == nil || *got.ExpiresAt != want {
				t.Errorf("expiresAt %s: created %v, read %v", sent, k.ExpiresAt, got.ExpiresAt)
			}
			s.Do("GET", "/v1/incidents", k.Key, nil).Expect(t, 200)
		}
		first := create(t, s, key, map[string]any{"title": "first", "severity": "low", "occurredAt": apitest.FirstTime})
		last := create(t, s, key, map[string]any{"title": "last", "severity": "low", "occurredAt": apitest.LastTimeZoned})
		var got incident
		s.Do("GET", "/v1/incidents/"+first.ID, key, nil).JSON(t, &got)
		if first.OccurredAt != apitest.FirstTime || got.OccurredAt != apitest.FirstTime {
			t.Errorf("first occurredAt %s, read %s", first.OccurredAt, got.OccurredAt)
		}
		s.Do("GET", "/v1/incidents/"+last.ID, key, nil).JSON(t, &got)
		if last.OccurredAt != apitest.LastTime || got.OccurredAt != apitest.LastTime {
			t.Errorf("last occurredAt %s, read %s", last.OccurredAt, got.OccurredAt)
		}
		s.Do("PATCH", "/v1/incidents/"+first.ID, key, map[string]any{"status": "resolved", "resolvedAt": apitest.LastTime}).JSON(t, &got)
		if got.ResolvedAt == nil || *got.ResolvedAt != apitest.LastTime {
			t.Errorf("resolvedAt %v", got.ResolvedAt)
		}
		// Cursors walk across both extremes, in both directions.
		for _, sort := range []string{"occurredAt:asc", "occurredAt:desc"} {
			q := "/v1/incidents?limit=1&sort=" + sort + "&fromOccurredAt=" + url.QueryEscape("0001-01-01T00:00:00Z") + "&toOccurredAt=" + url.QueryEscape(apitest.LastTime)
			var seen []string
			next := ""
			for {
				var p list
				s.Do("GET", q+next, key, nil).JSON(t, &p)
				for _, i := range p.Data {
					seen = append(seen, i.OccurredAt)
				}
				if p.Pagination.NextCursor == nil {
					break
				}
				next = "&cursor=" + url.QueryEscape(*p.Pagination.NextCursor)
			}
			if len(seen) != 4 || !slices.Contains(seen, apitest.FirstTime) || !slices.Contains(seen, apitest.LastTime) {
				t.Errorf("%s walk: %v", sort, seen)
			}
		}
		var m struct {
			StartsAt string `json:"startsAt"`
			EndsAt   string `json:"endsAt"`
		}
		s.Do("POST", "/v1/maintenance", key, window(apitest.FirstTime, apitest.LastTimeZoned)).Expect(t, 201).JSON(t, &m)
		if m.StartsAt != apitest.FirstTime || m.EndsAt != apitest.LastTime {
			t.Errorf("maintenance %+v", m)
		}
		var audit struct{ Data []json.RawMessage }
		s.Do("GET", "/v1/audit-events?limit=100&from="+url.QueryEscape("0001-01-01T00:00:00Z")+"&to="+url.QueryEscape(apitest.LastTimeZoned), key, nil).JSON(t, &audit)
		if len(audit.Data) < 8 {
			t.Errorf("audit over the whole range: %d events", len(audit.Data))
		}

		// Every route of the tenant still answers.
		var keys struct{ Data []apiKey }
		s.Do("GET", "/v1/api-keys", key, nil).JSON(t, &keys)
		for _, k := range keys.Data {
			s.Do("GET", "/v1/api-keys/"+k.ID, key, nil).Expect(t, 200)
		}
		s.Do("DELETE", "/v1/api-keys/"+keys.Data[0].ID, key, nil).Expect(t, 204)
		for _, path := range []string{"/v1/incidents", "/v1/incidents/" + first.ID, "/v1/incidents/" + last.ID, "/v1/audit-events",
			"/v1/maintenance", "/v1/components", "/v1/component_status"} {
			s.Do("GET", path, key, nil).Expect(t, 200)
		}
	})
}

// TestRotationOverlapBounds: overlapSeconds is bounded before it becomes a
// duration, so a value whose product overflows int64 cannot wrap into range.
func TestRotationOverlapBounds(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("overlap")
		admin := s.Key(tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		var k apiKey
		s.Do("POST", "/v1/api-keys", admin, map[string]any{"name": "r", "scopes": []string{"incidents:read"}}).Expect(t, 201).JSON(t, &k)
		rangeMsg := "overlapSeconds must be between 0 and 2592000 (30 days)"
		for body, msg := range map[string]string{
			`{"overlapSeconds":18446744074}`:           rangeMsg, // wrapped to 0.29 s when multiplied first
			`{"overlapSeconds":9223372036854775807}`:   rangeMsg,
			`{"overlapSeconds":99999999999999999999}`:  rangeMsg, // beyond int64: still the range
			`{"overlapSeconds":-1}`:                    rangeMsg,
			`{"overlapSeconds":-99999999999999999999}`: rangeMsg,
			`{"overlapSeconds":2592001}`:               rangeMsg,
			`{"overlapSeconds":1.5}`:                   "overlapSeconds must be an integer",
			`{"overlapSeconds":1e3}`:                   "overlapSeconds must be an integer",
			`{"overlapSeconds":"60"}`:                  "overlapSeconds must be an integer",
			`{"overlapSeconds":null}`:                  "overlapSeconds must be an integer",
		} {
			wantFieldProblem(t, s.Do("POST", "/v1/api-keys/"+k.ID+"/rotate", admin, body), "overlapSeconds", msg)
		}
		var got apiKey
		s.Do("GET", "/v1/api-keys/"+k.ID, admin, nil).JSON(t, &got)
		if got.ExpiresAt != nil || got.RevokedAt != nil {
			t.Fatalf("refused rotations changed the key: %+v", got)
		}
		// The bound itself is accepted: the old key lives 30 days more.
		before := time.Now()
		s.Do("POST", "/v1/api-keys/"+k.ID+"/rotate", admin, `{"overlapSeconds":2592000}`).Expect(t, 201)
		s.Do("GET", "/v1/api-keys/"+k.ID, admin, nil).JSON(t, &got)
		exp, err := time.Parse(time.RFC3339Nano, *got.ExpiresAt)
		if err != nil || exp.Before(before.Add(model.MaxRotationOverlap-time.Second)) || exp.After(time.Now().Add(model.MaxRotationOverlap)) {
			t.Errorf("old key expires %v (%v), want 30 days on", got.ExpiresAt, err)
		}
	})
}
