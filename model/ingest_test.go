package model

import "testing"

func TestDecideIngest(t *testing.T) {
	inc := func(id string, comps map[string]Impact) OpenIncident { return OpenIncident{ID: id, Components: comps} }
	cases := []struct {
		name   string
		open   []OpenIncident
		impact Impact
		want   IngestDecision
	}{
		{"no open incident", nil, ImpactMinor, IngestDecision{Action: IngestCreate}},
		{"already covered at the same impact", []OpenIncident{inc("a", map[string]Impact{"c": ImpactMinor})}, ImpactMinor,
			IngestDecision{Action: IngestNoChange, Source: "a", Target: "a"}},
		{"already covered higher", []OpenIncident{inc("a", map[string]Impact{"c": ImpactOutage})}, ImpactMinor,
			IngestDecision{Action: IngestNoChange, Source: "a", Target: "a"}},
		{"others open, one of the impact", []OpenIncident{inc("a", map[string]Impact{"x": ImpactMajor}), inc("b", map[string]Impact{"y": ImpactMinor})}, ImpactMinor,
			IngestDecision{Action: IngestAdd, Target: "b"}},
		{"others open, none of the impact", []OpenIncident{inc("a", map[string]Impact{"x": ImpactMajor})}, ImpactMinor,
			IngestDecision{Action: IngestCreate}},
		{"open without components does not count", []OpenIncident{inc("a", map[string]Impact{})}, ImpactMinor,
			IngestDecision{Action: IngestCreate}},
		{"escalation, alone, target exists", []OpenIncident{inc("a", map[string]Impact{"c": ImpactMinor}), inc("b", map[string]Impact{"y": ImpactMajor})}, ImpactMajor,
			IngestDecision{Action: IngestMove, Source: "a", Target: "b", CloseSource: true}},
		{"escalation, alone, no target", []OpenIncident{inc("a", map[string]Impact{"c": ImpactMinor})}, ImpactMajor,
			IngestDecision{Action: IngestRaise, Source: "a", Target: "a"}},
		{"escalation, with others, target exists", []OpenIncident{inc("a", map[string]Impact{"c": ImpactMinor, "d": ImpactMinor}), inc("b", map[string]Impact{"y": ImpactOutage})}, ImpactOutage,
			IngestDecision{Action: IngestMove, Source: "a", Target: "b"}},
		{"escalation, with others, no target", []OpenIncident{inc("a", map[string]Impact{"c": ImpactMinor, "d": ImpactMinor})}, ImpactOutage,
			IngestDecision{Action: IngestMoveToNew, Source: "a"}},
		{"newest target wins", []OpenIncident{inc("new", map[string]Impact{"x": ImpactMinor}), inc("old", map[string]Impact{"y": ImpactMinor})}, ImpactMinor,
			IngestDecision{Action: IngestAdd, Target: "new"}},
	}
	for _, c := range cases {
		if got := DecideIngest(c.open, "c", c.impact); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseImpact(t *testing.T) {
	for in, want := range map[string]Impact{"maintenance": 0, "Minor": 1, "major": 2, "outage": 3, "0": 0, "3": 3} {
		if got, ok := ParseImpact(in); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"4", "-1", "severe", ""} {
		if _, ok := ParseImpact(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if ImpactOutage.Severity() != SeverityCritical || ImpactMaintenance.Severity() != SeverityLow {
		t.Error("impact to severity mapping")
	}
}
