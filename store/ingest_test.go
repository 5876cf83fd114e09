package store

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// TestReportDecidesAgainWhenAnIncidentChanged: an API write to an incident
// between a report's decision and its writes (no lock keeps API writes off)
// makes the report decide again from the new state, instead of
// overwriting the change or failing.
func TestReportDecidesAgainWhenAnIncidentChanged(t *testing.T) {
	s := openStore(t, postgresURL(t), Options{})
	ten := tenant("stale")
	ctx := as(ten)
	for _, name := range []string{"a", "b"} {
		if _, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some(name)}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.Ingest().Report(ctx, model.ComponentReport{Name: "a", Impact: model.ImpactMajor})
	if err != nil || !first.Created {
		t.Fatalf("first report: %+v %v", first, err)
	}
	var once sync.Once
	decisions := 0
	s.afterDecisionRead = func() {
		decisions++
		once.Do(func() {
			// Another connection edits the incident the report is about to join.
			if _, _, err := s.Incidents().Update(context.WithoutCancel(ctx), first.Incident.ID, model.IncidentPatch{Title: model.Some("renamed meanwhile")}); err != nil {
				t.Error(err)
			}
		})
	}
	res, err := s.Ingest().Report(ctx, model.ComponentReport{Name: "b", Impact: model.ImpactMajor})
	s.afterDecisionRead = nil
	if err != nil {
		t.Fatal(err)
	}
	if decisions != 2 {
		t.Errorf("%d decisions, want 2 (the first one's writes found the incident changed)", decisions)
	}
	if res.Incident.ID != first.Incident.ID || res.Incident.Title != "renamed meanwhile" || res.AffectCount != 2 {
		t.Errorf("report joined %+v (%d components)", res.Incident, res.AffectCount)
	}
	// The title change was not overwritten by the report's own write.
	got, err := s.Incidents().Get(ctx, first.Incident.ID)
	if err != nil || got.Title != "renamed meanwhile" {
		t.Errorf("incident after both: %+v %v", got, err)
	}
}

// callerClock tells each caller the time that stages a race: the fast
// path (findComponent) sees a time before the maintenance window, the
// locked decision's read a time inside it, and its second look (activeFor)
// a time after it: the window ended (or was deleted) between two reads.
type callerClock struct {
	mu                    sync.Mutex
	staged                bool
	before, inside, after time.Time
}

func (c *callerClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.staged {
		return c.before
	}
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		switch {
		case strings.HasSuffix(f.Function, ".activeFor"):
			return c.after
		case strings.HasSuffix(f.Function, ".findComponent"):
			return c.before
		}
		if !more {
			return c.inside
		}
	}
}

// TestReportRacingMaintenanceEnd: a report whose decision saw a window that
// was gone when it looked again is decided as outside maintenance (it used
// to answer an empty conflict and drop the report).
func TestReportRacingMaintenanceEnd(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		base := time.Now().UTC().Truncate(time.Second)
		clk := &callerClock{before: base, inside: base.Add(90 * time.Second), after: base.Add(200 * time.Second)}
		s := openStore(t, url, Options{Clock: clk})
		ctx := as(tenant("mwrace"))
		c, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("web")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Maintenance().Create(ctx, model.MaintenanceInput{Description: "m", StartsAt: base.Add(60 * time.Second),
			EndsAt: base.Add(120 * time.Second), ComponentIDs: []string{c.ID}}); err != nil {
			t.Fatal(err)
		}
		clk.mu.Lock()
		clk.staged = true
		clk.mu.Unlock()
		res, err := s.Ingest().Report(ctx, model.ComponentReport{Name: "web", Impact: model.ImpactMajor, Text: "down"})
		if err != nil || res == nil || !res.Created || res.Maintenance != nil || res.Incident == nil || res.Incident.ID == "" {
			t.Fatalf("report: %+v %v", res, err)
		}
		got, err := s.Incidents().Get(ctx, res.Incident.ID)
		if err != nil || got.Title != "down" {
			t.Errorf("the report's incident: %+v %v", got, err)
		}
	})
}
