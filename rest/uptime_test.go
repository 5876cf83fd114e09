package rest_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// setClock is a clock the test moves.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *setClock) set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *setClock) add(d time.Duration) { c.set(c.Now().Add(d)) }

type uptimeBody struct {
	ComponentID, Status string
	Windows             []struct {
		Window            string
		Uptime            *float64
		Seconds           struct{ Operational, Minor, Major, Outage, Maintenance float64 }
		ResolvedIncidents int
		MTTRSeconds       *float64
	}
	Days []struct {
		Date, Worst string
	}
}

// TestComponentUptime: an hour operational, an hour in outage, resolved,
// an hour operational again: 2/3 up over every window, MTTR one hour, the
// day's worst level outage; the same over the public door for a published
// tenant, nothing for another tenant's key.
func TestComponentUptime(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		t0 := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
		clock := &setClock{now: t0}
		s := apitest.Start(t, b, apitest.Config{Clock: clock})
		ten := apitest.Tenant("uptime")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		id := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).
			Expect(t, 201).Map(t)["id"].(string)
		clock.add(time.Hour)
		rep := send(t, s, key, "API", "eu", "outage")
		clock.add(time.Hour)
		s.Do("PATCH", "/v1/incidents/"+rep.ID, key, map[string]any{"status": "resolved"}).Expect(t, 200)
		clock.add(time.Hour)

		check := func(u uptimeBody) {
			t.Helper()
			if u.ComponentID != id || u.Status != "operational" || len(u.Windows) != 4 || len(u.Days) != 90 {
				t.Fatalf("uptime %+v", u)
			}
			for _, w := range u.Windows {
				if w.Uptime == nil || math.Abs(*w.Uptime-2.0/3) > 1e-9 || w.Seconds.Operational != 7200 || w.Seconds.Outage != 3600 ||
					w.ResolvedIncidents != 1 || w.MTTRSeconds == nil || *w.MTTRSeconds != 3600 {
					t.Errorf("window %s: %+v", w.Window, w)
				}
			}
			if last := u.Days[89]; last.Date != "2026-03-10" || last.Worst != "outage" || u.Days[88].Worst != "operational" {
				t.Errorf("days: %+v %+v", u.Days[88], last)
			}
		}
		var u uptimeBody
		s.Do("GET", "/v1/components/"+id+"/uptime", key, nil).JSON(t, &u)
		check(u)

		// Another tenant's key: not found. Unpublished: not found publicly.
		wantProblem(t, s.Do("GET", "/v1/components/"+id+"/uptime", s.Key(apitest.Tenant("stranger"), model.ScopeComponentsRead), nil), 404, "NotFound")
		wantProblem(t, s.Do("GET", "/v1/public/"+ten+"/uptime?component="+id, "", nil), 404, "NotFound")
		publish(t, s, key, map[string]any{"public": true})
		var pub struct{ Components []uptimeBody }
		s.Do("GET", "/v1/public/"+ten+"/uptime?component="+id+",cmp_unknown", "", nil).JSON(t, &pub)
		if len(pub.Components) != 1 {
			t.Fatalf("public uptime: %+v", pub)
		}
		check(pub.Components[0])
		wantProblem(t, s.Do("GET", "/v1/public/"+ten+"/uptime", "", nil), 400, "ValidationError")
	})
}
