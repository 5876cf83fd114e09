package graph_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *movingClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestUptimeQuery: the GraphQL twin of the uptime history answers the same
// exact figures (an hour up, an hour in outage, resolved, an hour up), for
// the caller's components and, publicly, for a published tenant's.
func TestUptimeQuery(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		clock := &movingClock{now: time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)}
		s := apitest.Start(t, b, apitest.Config{Clock: clock})
		ten := apitest.Tenant("gup")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		id := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).
			Expect(t, 201).Map(t)["id"].(string)
		clock.add(time.Hour)
		pubReport(t, s, key, "API", "outage")
		var open struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/incidents?status=open", key, nil).JSON(t, &open)
		clock.add(time.Hour)
		s.Do("PATCH", "/v1/incidents/"+open.Data[0].ID, key, map[string]any{"status": "resolved"}).Expect(t, 200)
		clock.add(time.Hour)

		const fields = `componentId status windows { window uptime seconds { operational outage } resolvedIncidents mttrSeconds } days { date worst }`
		type up struct {
			ComponentID, Status string
			Windows             []struct {
				Window            string
				Uptime            float64
				Seconds           struct{ Operational, Outage float64 }
				ResolvedIncidents int
				MttrSeconds       float64
			}
			Days []struct{ Date, Worst string }
		}
		check := func(data json.RawMessage, field string) {
			t.Helper()
			var d map[string][]up
			if err := json.Unmarshal(data, &d); err != nil || len(d[field]) != 1 {
				t.Fatalf("%s: %s %v", field, data, err)
			}
			u := d[field][0]
			if u.ComponentID != id || u.Status != "operational" || len(u.Windows) != 4 || len(u.Days) != 90 ||
				u.Days[89].Worst != "outage" || u.Days[89].Date != "2026-03-10" {
				t.Fatalf("%s: %s", field, data)
			}
			for _, w := range u.Windows {
				if w.Seconds.Operational != 7200 || w.Seconds.Outage != 3600 || w.ResolvedIncidents != 1 || w.MttrSeconds != 3600 || w.Uptime < 0.666 || w.Uptime > 0.667 {
					t.Errorf("%s %s: %+v", field, w.Window, w)
				}
			}
		}
		_, res := s.GQL(key, `query($c: [ID!]!) { uptime(components: $c) { `+fields+` } }`, map[string]any{"c": []string{id, "cmp_unknown"}})
		check(res.Data, "uptime")
		q := `query($t: ID!, $c: [ID!]!) { publicUptime(tenant: $t, components: $c) { ` + fields + ` } }`
		vars := map[string]any{"t": ten, "c": []string{id}}
		stranger := s.Key(apitest.Tenant("gup-stranger"), model.ScopeRead)
		if _, r := s.GQL(stranger, q, vars); r.Code() != "NotFound" {
			t.Errorf("unpublished: %+v", r)
		}
		s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": true}).Expect(t, 204)
		_, res = s.GQL(stranger, q, vars)
		check(res.Data, "publicUptime")
	})
}
