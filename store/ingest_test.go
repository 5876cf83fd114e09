package store

import (
	"context"
	"fmt"
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

// TestMonitoringChangesUpdateIncidents: a component monitoring adds to,
// moves off or raises within an existing incident updates that incident as
// a PATCH of its affects does: updatedAt and updatedBy move to the
// report's time and actor, in the row and in the event, and an audit row
// names the components (they used to stay as the incident was opened).
func TestMonitoringChangesUpdateIncidents(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		clk := &stepClock{now: t0}
		s := openStore(t, url, Options{Clock: clk})
		ten := tenant("monupd")
		ctx := as(ten)
		events := watch(t, s, ten)
		for _, n := range []string{"web", "db", "api"} {
			if _, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some(n)}); err != nil {
				t.Fatal(err)
			}
		}
		report := func(at time.Time, name string, impact model.Impact) *model.IngestResult {
			t.Helper()
			clk.set(at)
			res, err := s.Ingest().Report(ctx, model.ComponentReport{Name: name, Impact: impact, Text: name + " down"})
			if err != nil {
				t.Fatalf("report %s %s: %v", name, impact, err)
			}
			return res
		}
		updated := func(id string, want time.Time, what string) {
			t.Helper()
			got, err := s.Incidents().Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !got.UpdatedAt.Equal(want) || got.UpdatedBy != "actor-"+ten {
				t.Errorf("%s: updatedAt %s by %s, want %s by actor-%s", what, got.UpdatedAt, got.UpdatedBy, want, ten)
			}
		}
		audited := func(id string) []*model.AuditEvent {
			t.Helper()
			page, err := s.Audit().List(ctx, model.AuditQuery{Limit: 100, ResourceID: id})
			if err != nil {
				t.Fatal(err)
			}
			return page.Items
		}

		first := report(t0, "web", model.ImpactMinor)
		joined := report(t0.Add(time.Hour), "db", model.ImpactMinor)
		if !first.Created || joined.Created || joined.Incident.ID != first.Incident.ID {
			t.Fatalf("db did not join web's incident: %+v", joined.Incident)
		}
		updated(first.Incident.ID, t0.Add(time.Hour), "after a join")
		// The newest audit row of an incident, and how many it has.
		newest := func(id string) (*model.AuditEvent, int) {
			t.Helper()
			a := audited(id)
			var last *model.AuditEvent
			for _, e := range a {
				if last == nil || e.At.After(last.At) {
					last = e
				}
			}
			if last == nil {
				t.Fatalf("no audit rows for %s", id)
			}
			return last, len(a)
		}
		db := ""
		for _, af := range joined.Affects {
			if af.ComponentID != first.Affects[0].ComponentID {
				db = af.ComponentID
			}
		}
		if e, n := newest(first.Incident.ID); n != 2 || e.Action != model.AuditIncidentUpdate || !strings.Contains(fmt.Sprint(e.Changes["affects"].After), db) {
			t.Errorf("audit after a join (%d rows): %+v", n, e)
		}

		// web moves to a major incident: the minor one (db stays) is updated too.
		moved := report(t0.Add(2*time.Hour), "web", model.ImpactMajor)
		if !moved.Created {
			t.Fatalf("web did not move to a new incident: %+v", moved)
		}
		updated(first.Incident.ID, t0.Add(2*time.Hour), "the incident web left")
		if e, n := newest(first.Incident.ID); n != 3 || !strings.Contains(fmt.Sprint(e.Changes["affects"].Before), first.Affects[0].ComponentID) {
			t.Errorf("audit after a move (%d rows): %+v", n, e)
		}

		// db raised within its incident, the severity staying (a person set it higher).
		if _, _, err := s.Incidents().Update(ctx, first.Incident.ID, model.IncidentPatch{Severity: model.Some(model.SeverityCritical)}); err != nil {
			t.Fatal(err)
		}
		if r := report(t0.Add(3*time.Hour), "db", model.ImpactOutage); r.Incident.ID != first.Incident.ID {
			t.Fatalf("db was not raised in place: %+v", r.Incident)
		}
		updated(first.Incident.ID, t0.Add(3*time.Hour), "after a raise")

		// The events carry the incident as updated.
		evs := events.waitFor(6, 10*time.Second)
		var last *model.Event
		for _, e := range evs {
			if e.Incident.ID == first.Incident.ID {
				last = e
			}
		}
		if last == nil || !last.Incident.UpdatedAt.Equal(t0.Add(3*time.Hour)) {
			t.Errorf("the raise's event: %+v", last)
		}
	})
}
