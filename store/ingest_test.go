package store

import (
	"context"
	"sync"
	"testing"

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
