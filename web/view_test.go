package web

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

func TestOverall(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	comp := func(impacts ...model.Impact) model.ComponentState {
		st := model.ComponentState{Component: &model.Component{ID: "cmp_" + strconv.Itoa(len(impacts))}}
		for _, i := range impacts {
			st.Incidents = append(st.Incidents, model.AffectingIncident{ID: "inc_x", Impact: i})
		}
		return st
	}
	inc := []*model.Incident{{ID: "inc_x"}}
	active := []*model.Maintenance{{StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}}
	later := []*model.Maintenance{{StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}}
	for _, c := range []struct {
		name string
		sum  model.StatusSummary
		want string
	}{
		{"nothing", model.StatusSummary{}, "operational"},
		{"all well", model.StatusSummary{Components: []model.ComponentState{comp(), comp()}}, "operational"},
		{"maintenance to come", model.StatusSummary{Components: []model.ComponentState{comp()}, Maintenance: later}, "operational"},
		{"maintenance under way", model.StatusSummary{Components: []model.ComponentState{comp()}, Maintenance: active}, "maintenance"},
		{"an incident degrading nothing", model.StatusSummary{Components: []model.ComponentState{comp()}, OpenIncidents: inc, Maintenance: active}, "incident"},
		{"an incident at maintenance impact", model.StatusSummary{Components: []model.ComponentState{comp(model.ImpactMaintenance)}, OpenIncidents: inc}, "incident"},
		{"minor", model.StatusSummary{Components: []model.ComponentState{comp(model.ImpactMinor)}, OpenIncidents: inc}, "minor"},
		{"the worst component wins", model.StatusSummary{Components: []model.ComponentState{comp(model.ImpactMinor), comp(model.ImpactMinor, model.ImpactOutage)}, OpenIncidents: inc}, "outage"},
		{"major", model.StatusSummary{Components: []model.ComponentState{comp(model.ImpactMajor)}, OpenIncidents: inc, Maintenance: active}, "major"},
	} {
		if got := overall(&c.sum, now); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// The widget computes the overall status in JavaScript with the same
// tables: they must not drift apart.
func TestWidgetTablesMatch(t *testing.T) {
	js := string(WidgetJS)
	quoted := make([]string, len(levels))
	for i, l := range levels {
		quoted[i] = strconv.Quote(l)
	}
	if want := "const LEVELS = [" + strings.Join(quoted, ", ") + "];"; !strings.Contains(js, want) {
		t.Errorf("widget.js lacks %s", want)
	}
	for name, tables := range map[string]map[string]string{"LABEL": statusLabel, "OVERALL": overallText, "TONE": tone} {
		block := regexp.MustCompile(`(?s)const ` + name + ` = \{(.*?)\};`).FindStringSubmatch(js)
		if block == nil {
			t.Fatalf("widget.js has no %s table", name)
		}
		for k, v := range tables {
			if !strings.Contains(block[1], fmt.Sprintf("%s: %q", k, v)) {
				t.Errorf("widget.js's %s lacks %s: %q", name, k, v)
			}
		}
	}
	// Every Go impact name is a level both know.
	for i := model.ImpactMaintenance; i <= model.ImpactOutage; i++ {
		if _, ok := statusLabel[i.String()]; !ok {
			t.Errorf("impact %s has no label", i)
		}
	}
}

func TestPastIncidentsByDay(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 30, 0, 0, time.UTC)
	at := func(id string, occurred time.Time, status model.Status) model.PublicIncident {
		return model.PublicIncident{Incident: &model.Incident{ID: id, Title: id, Status: status, OccurredAt: occurred}}
	}
	open := &model.Incident{ID: "inc_open", Status: model.StatusOpen, OccurredAt: now.Add(-time.Hour)}
	hist := []model.PublicIncident{
		{Incident: open},
		at("inc_late", time.Date(2026, 3, 9, 23, 59, 0, 0, time.UTC), model.StatusResolved),
		at("inc_today", time.Date(2026, 3, 10, 0, 1, 0, 0, time.FixedZone("east", 3600)), model.StatusClosed), // 9 March, 23:01 UTC
		at("inc_old", time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC), model.StatusResolved),
	}
	v := buildView("t", &model.StatusSummary{OpenIncidents: []*model.Incident{open}, GeneratedAt: now}, hist, nil, 3, now)
	var got []string
	for _, d := range v.Days {
		var ids []string
		for _, i := range d.Incidents {
			ids = append(ids, i.ID)
		}
		got = append(got, d.Date.Format(time.DateOnly)+":"+strings.Join(ids, ","))
	}
	if want := "2026-03-10:|2026-03-09:inc_late,inc_today|2026-03-08:inc_old"; strings.Join(got, "|") != want {
		t.Errorf("days %s, want %s", strings.Join(got, "|"), want)
	}
	if len(v.Open) != 1 || v.Open[0].ID != "inc_open" {
		t.Errorf("open %+v", v.Open)
	}
}

// chunkUptime records the calls of PublicUptime.
type chunkUptime struct{ calls []int }

func (u *chunkUptime) Uptime(context.Context, []string) (map[string]*model.ComponentUptime, error) {
	return nil, nil
}

func (u *chunkUptime) PublicUptime(_ context.Context, _ string, ids []string) (map[string]*model.ComponentUptime, error) {
	u.calls = append(u.calls, len(ids))
	out := map[string]*model.ComponentUptime{}
	for _, id := range ids {
		out[id] = &model.ComponentUptime{ComponentID: id}
	}
	return out, nil
}

// The page asks for the uptime of at most MaxUptimeComponents at a time.
func TestLoadUptimeChunks(t *testing.T) {
	sum := &model.StatusSummary{}
	for i := range 2*model.MaxUptimeComponents + 1 {
		sum.Components = append(sum.Components, model.ComponentState{Component: &model.Component{ID: "cmp_" + strconv.Itoa(i)}})
	}
	u := &chunkUptime{}
	got, err := page{uptime: u}.loadUptime(context.Background(), "t", sum)
	if err != nil || len(got) != len(sum.Components) || fmt.Sprint(u.calls) != fmt.Sprint([]int{100, 100, 1}) {
		t.Fatalf("%d uptimes, calls %v, %v", len(got), u.calls, err)
	}
}

func TestUptimeFigures(t *testing.T) {
	f := func(r float64) *float64 { return &r }
	for r, want := range map[*float64]string{nil: "", f(1): "100.00%", f(0.99999): "99.99%", f(2.0 / 3): "66.67%", f(0): "0.00%"} {
		if got := percent(r); got != want {
			t.Errorf("percent: %q, want %q", got, want)
		}
	}
	for d, want := range map[time.Duration]string{42 * time.Second: "42s", 5 * time.Minute: "5m", 90 * time.Minute: "1h 30m", 50 * time.Hour: "2d 2h"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v): %q, want %q", d, got, want)
		}
	}
}
