package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// recorded is one row of uptime_intervals.
type recorded struct {
	level      model.Level
	start, end time.Time // end zero while open
}

func (r recorded) String() string {
	end := "open"
	if !r.end.IsZero() {
		end = r.end.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s [%s, %s)", r.level, r.start.Format(time.RFC3339Nano), end)
}

// intervalsOf reads a component's recorded intervals, in order.
func intervalsOf(t *testing.T, s *Store, tenant, component string) []recorded {
	t.Helper()
	rows, err := s.query(context.Background(), `SELECT level, started_at, ended_at FROM uptime_intervals
		WHERE tenant_id = $1 AND component_id = $2 ORDER BY started_at, id`, tenant, component)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []recorded
	for rows.Next() {
		var r recorded
		var level int
		var start dbTime
		var end *dbTime
		if err := rows.Scan(&level, &start, &end); err != nil {
			t.Fatal(err)
		}
		r.level, r.start = model.Level(level), start.Time
		if end != nil {
			r.end = end.Time
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkIntervals(t *testing.T, what string, got []recorded, want ...recorded) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: recorded\n%v\nwant\n%v", what, got, want)
	}
}

func affect(component string, i model.Impact) []model.AffectInput {
	return []model.AffectInput{{ComponentID: component, TypeID: i.TypeID()}}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestUptimeRecorded: a component's history of incidents (API writes and
// a monitoring report) and maintenance windows, recorded at the clock's
// times, gives exact intervals, totals, ratios, strip and MTTR.
func TestUptimeRecorded(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // the end: "now"
		clock := &stepClock{}
		set := func(d time.Duration) { clock.set(t0.Add(d)) }
		s := openStore(t, url, Options{Clock: clock})
		ten := tenant("up")
		ctx := as(ten)
		const day = 24 * time.Hour
		set(-10 * day)
		api := must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("API")}))
		other := must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("Other")}))
		window := func(from, to time.Duration) string {
			t.Helper()
			m := must[*model.Maintenance](t)(s.Maintenance().Create(ctx, model.MaintenanceInput{Description: "work",
				StartsAt: t0.Add(from), EndsAt: t0.Add(to), ComponentIDs: []string{api.ID}}))
			return m.ID
		}
		create := func(in model.IncidentCreate) *model.Incident {
			t.Helper()
			if in.Title == "" {
				in.Title, in.Severity = "down", model.SeverityHigh
			}
			if in.OccurredAt.IsZero() {
				in.OccurredAt = clock.Now()
			}
			inc, _, err := s.Incidents().Create(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			return inc
		}
		patch := func(id string, p model.IncidentPatch) {
			t.Helper()
			if _, _, err := s.Incidents().Update(ctx, id, p); err != nil {
				t.Fatal(err)
			}
		}
		resolve := model.IncidentPatch{Status: model.Some(model.StatusResolved)}

		// Maintenance: scheduled ahead (2h), scheduled after it began (counts
		// from then: 1h), and cancelled while under way (keeps 1h).
		set(-9 * day)
		window(-5*day+time.Hour, -5*day+3*time.Hour)
		set(-8 * day)
		cancelled := window(-6*day, -6*day+4*time.Hour)
		set(-6*day + time.Hour)
		if err := s.Maintenance().Delete(ctx, cancelled); err != nil {
			t.Fatal(err)
		}
		set(-4 * day)
		window(-4*day-2*time.Hour, -4*day+time.Hour)

		// A: major, raised to outage, resolved; it occurred 30 minutes
		// before it was declared (MTTR 3h30).
		set(-3 * day)
		a := create(model.IncidentCreate{Affects: affect(api.ID, model.ImpactMajor), OccurredAt: t0.Add(-3*day - 30*time.Minute)})
		set(-3*day + 2*time.Hour)
		patch(a.ID, model.IncidentPatch{Affects: model.Some(affect(api.ID, model.ImpactOutage))})
		set(-3*day + 3*time.Hour)
		patch(a.ID, resolve)
		// M: an hour of maintenance-type impact (not in MTTR).
		set(-2 * day)
		m := create(model.IncidentCreate{Affects: affect(api.ID, model.ImpactMaintenance)})
		set(-2*day + time.Hour)
		patch(m.ID, resolve)
		// B minor, C outage on top of it then deleted, B's component removed
		// (then B resolved: no longer this component's).
		set(-day)
		b := create(model.IncidentCreate{Affects: affect(api.ID, model.ImpactMinor)})
		set(-day + time.Hour)
		c := create(model.IncidentCreate{Affects: affect(api.ID, model.ImpactOutage)})
		set(-day + 90*time.Minute)
		if err := s.Incidents().Delete(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		set(-day + 2*time.Hour)
		patch(b.ID, model.IncidentPatch{Affects: model.Some([]model.AffectInput{})})
		set(-day + 3*time.Hour)
		patch(b.ID, resolve)
		// D: declared already resolved, an hour after it occurred: no level
		// change, MTTR 1h. O: another component's.
		set(-20 * time.Hour)
		create(model.IncidentCreate{Status: model.StatusResolved, OccurredAt: t0.Add(-21 * time.Hour), Affects: affect(api.ID, model.ImpactMajor)})
		set(-12 * time.Hour)
		o := create(model.IncidentCreate{Affects: affect(other.ID, model.ImpactOutage)})
		set(-11 * time.Hour)
		patch(o.ID, resolve)
		// Monitoring reports an outage two hours ago; still down.
		set(-2 * time.Hour)
		if _, err := s.Ingest().Report(ctx, model.ComponentReport{Name: "API", Impact: model.ImpactOutage}); err != nil {
			t.Fatal(err)
		}
		set(0)

		at := func(d time.Duration) time.Time { return t0.Add(d) }
		checkIntervals(t, "API", intervalsOf(t, s, ten, api.ID),
			recorded{model.LevelMajor, at(-3 * day), at(-3*day + 2*time.Hour)},
			recorded{model.LevelOutage, at(-3*day + 2*time.Hour), at(-3*day + 3*time.Hour)},
			recorded{model.LevelMaintenance, at(-2 * day), at(-2*day + time.Hour)},
			recorded{model.LevelMinor, at(-day), at(-day + time.Hour)},
			recorded{model.LevelOutage, at(-day + time.Hour), at(-day + 90*time.Minute)},
			recorded{model.LevelMinor, at(-day + 90*time.Minute), at(-day + 2*time.Hour)},
			recorded{model.LevelOutage, at(-2 * time.Hour), time.Time{}})
		checkIntervals(t, "Other", intervalsOf(t, s, ten, other.ID),
			recorded{model.LevelOutage, at(-12 * time.Hour), at(-11 * time.Hour)})

		got, err := s.Uptime().Uptime(ctx, []string{api.ID, other.ID, "cmp_nonexistent", api.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[api.ID] == nil || got[other.ID] == nil {
			t.Fatalf("answered %v", got)
		}
		u := got[api.ID]
		if u.ComponentID != api.ID || u.Level != model.LevelOutage || !u.Since.Equal(at(-2*time.Hour)) || u.InMaintenance || !u.GeneratedAt.Equal(t0) {
			t.Errorf("now: %+v", u)
		}
		h := time.Hour
		type want struct {
			from                            time.Time
			op, minor, major, outage, maint time.Duration
			ratio                           float64
			resolved                        int
			mttr                            time.Duration
		}
		wants := []want{
			{at(-day), 20 * h, 90 * time.Minute, 0, 150 * time.Minute, 0, 21.5 / 24, 1, h},
			{at(-7 * day), 156 * h, 90 * time.Minute, 2 * h, 210 * time.Minute, 5 * h, 157.5 / 163, 2, 135 * time.Minute},
			{at(-10 * day), 228 * h, 90 * time.Minute, 2 * h, 210 * time.Minute, 5 * h, 229.5 / 235, 2, 135 * time.Minute},
			{at(-10 * day), 228 * h, 90 * time.Minute, 2 * h, 210 * time.Minute, 5 * h, 229.5 / 235, 2, 135 * time.Minute},
		}
		for i, w := range wants {
			g := u.Windows[i]
			tot := model.UptimeTotals{Operational: w.op, Minor: w.minor, Major: w.major, Outage: w.outage, Maintenance: w.maint}
			if !g.From.Equal(w.from) || !g.To.Equal(t0) || g.Totals != tot {
				t.Errorf("%s: from %s to %s %+v, want from %s %+v", g.Name, g.From, g.To, g.Totals, w.from, tot)
			}
			if g.Ratio == nil {
				t.Errorf("%s: no ratio, want %v", g.Name, w.ratio)
			} else if *g.Ratio != w.ratio {
				t.Errorf("%s: ratio %v, want %v", g.Name, *g.Ratio, w.ratio)
			}
			if g.Resolved != w.resolved || g.MTTR == nil || *g.MTTR != w.mttr {
				t.Errorf("%s: %d resolved, MTTR %v; want %d, %s", g.Name, g.Resolved, g.MTTR, w.resolved, w.mttr)
			}
		}
		type dayWant struct {
			worst model.Level
			maint bool
			tot   model.UptimeTotals
		}
		full := model.UptimeTotals{Operational: day}
		days := map[int]dayWant{
			89: {model.LevelOutage, false, model.UptimeTotals{Operational: 10 * h, Outage: 2 * h}},
			88: {model.LevelOutage, false, model.UptimeTotals{Operational: 22 * h, Minor: 90 * time.Minute, Outage: 30 * time.Minute}},
			87: {model.LevelOperational, true, model.UptimeTotals{Operational: 23 * h, Maintenance: h}},
			86: {model.LevelOutage, false, model.UptimeTotals{Operational: 21 * h, Major: 2 * h, Outage: h}},
			85: {model.LevelOperational, true, model.UptimeTotals{Operational: 23 * h, Maintenance: h}},
			84: {model.LevelOperational, true, model.UptimeTotals{Operational: 22 * h, Maintenance: 2 * h}},
			83: {model.LevelOperational, true, model.UptimeTotals{Operational: 23 * h, Maintenance: h}},
			82: {model.LevelOperational, false, full}, 81: {model.LevelOperational, false, full}, 80: {model.LevelOperational, false, full},
			79: {model.LevelOperational, false, model.UptimeTotals{Operational: 12 * h}},
		}
		for i, d := range u.Days {
			w := days[i] // zero before the component existed
			if i < 79 {
				w.worst = model.LevelOperational
			}
			if d.Worst != w.worst || d.Maintenance != w.maint || d.Totals != w.tot {
				t.Errorf("day %d (%s): %s, maintenance %v, %+v; want %s, %v, %+v", i, d.Date.Format(time.DateOnly), d.Worst, d.Maintenance, d.Totals, w.worst, w.maint, w.tot)
			}
		}
		if !u.Days[89].Date.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("the strip ends on %s", u.Days[89].Date)
		}
		// Other: one hour of outage, MTTR of its incident (occurred when declared).
		ou := got[other.ID]
		if w := ou.Windows[0]; w.Totals != (model.UptimeTotals{Operational: 23 * h, Outage: h}) || w.MTTR == nil || *w.MTTR != h || w.Resolved != 1 {
			t.Errorf("other: %+v, MTTR %v", w.Totals, w.MTTR)
		}

		// The public answer is the same, once published.
		if _, err := s.Uptime().PublicUptime(context.Background(), ten, []string{api.ID}); !isCode(err, model.CodeNotFound) {
			t.Errorf("unpublished: %v", err)
		}
		if err := s.Status().SetPublication(ctx, model.Publication{Public: true}); err != nil {
			t.Fatal(err)
		}
		pub, err := s.Uptime().PublicUptime(context.Background(), ten, []string{api.ID, other.ID})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pub, got) {
			t.Errorf("public answer differs:\n%+v\n%+v", pub[api.ID], got[api.ID])
		}
	})
}

func isCode(err error, c model.Code) bool {
	var e *model.Error
	return errors.As(err, &e) && e.Code == c
}

// TestUptimeTransitions: which writes record what; a write that leaves a
// level as it was records nothing.
func TestUptimeTransitions(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		clock := &stepClock{now: t0}
		s := openStore(t, url, Options{Clock: clock})
		ten := tenant("upt")
		ctx := as(ten)
		comp := must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("Web")}))
		second := must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("Web 2")}))
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
		step := func(m int) { clock.set(at(m)) }
		sev := func(v int) *int { return &v }
		create := func(status model.Status, as []model.AffectInput) *model.Incident {
			t.Helper()
			inc, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "x", Severity: model.SeverityLow, Status: status, OccurredAt: clock.Now(), Affects: as})
			if err != nil {
				t.Fatal(err)
			}
			return inc
		}
		patch := func(id string, p model.IncidentPatch) {
			t.Helper()
			if _, _, err := s.Incidents().Update(ctx, id, p); err != nil {
				t.Fatal(err)
			}
		}
		// Created resolved, or without affects: nothing.
		step(1)
		create(model.StatusResolved, affect(comp.ID, model.ImpactOutage))
		x := create(model.StatusOpen, nil)
		checkIntervals(t, "nothing yet", intervalsOf(t, s, ten, comp.ID))
		// Two components at once, at custom severities (minor up to 50).
		step(2)
		patch(x.ID, model.IncidentPatch{Affects: model.Some([]model.AffectInput{
			{ComponentID: comp.ID, TypeID: model.ImpactMajor.TypeID(), Severity: sev(40)},
			{ComponentID: second.ID, TypeID: model.ImpactMajor.TypeID(), Severity: sev(60)}})})
		// A severity within the same level, and a title: nothing.
		step(3)
		patch(x.ID, model.IncidentPatch{Title: model.Some("y"), Affects: model.Some([]model.AffectInput{
			{ComponentID: comp.ID, TypeID: model.ImpactMajor.TypeID(), Severity: sev(50)},
			{ComponentID: second.ID, TypeID: model.ImpactMajor.TypeID(), Severity: sev(60)}})})
		// A second incident, milder: nothing; worse: a new level.
		step(4)
		y := create(model.StatusInvestigating, affect(comp.ID, model.ImpactMaintenance))
		step(5)
		patch(y.ID, model.IncidentPatch{Affects: model.Some(affect(comp.ID, model.ImpactOutage))})
		// Resolving the worse one goes back to x's level; reopening it,
		// up again; closing x meanwhile changes nothing for comp.
		step(6)
		patch(y.ID, model.IncidentPatch{Status: model.Some(model.StatusResolved)})
		step(7)
		patch(y.ID, model.IncidentPatch{Status: model.Some(model.StatusOpen)})
		step(8)
		patch(x.ID, model.IncidentPatch{Status: model.Some(model.StatusClosed)})
		// Deleting the last: operational.
		step(9)
		if err := s.Incidents().Delete(ctx, y.ID); err != nil {
			t.Fatal(err)
		}
		checkIntervals(t, "comp", intervalsOf(t, s, ten, comp.ID),
			recorded{model.LevelMinor, at(2), at(5)},
			recorded{model.LevelOutage, at(5), at(6)},
			recorded{model.LevelMinor, at(6), at(7)},
			recorded{model.LevelOutage, at(7), at(9)})
		checkIntervals(t, "second", intervalsOf(t, s, ten, second.ID),
			recorded{model.LevelMajor, at(2), at(8)})

		// A writer whose clock is behind never overlaps the chain.
		step(20)
		z, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "z", Severity: model.SeverityLow, OccurredAt: t0, Affects: affect(comp.ID, model.ImpactMajor)})
		if err != nil {
			t.Fatal(err)
		}
		step(15)
		patch(z.ID, model.IncidentPatch{Affects: model.Some(affect(comp.ID, model.ImpactMinor))})
		step(10)
		patch(z.ID, model.IncidentPatch{Status: model.Some(model.StatusResolved)})
		step(12)
		patch(z.ID, model.IncidentPatch{Status: model.Some(model.StatusOpen)})
		got := intervalsOf(t, s, ten, comp.ID)[4:]
		checkIntervals(t, "behind", got,
			recorded{model.LevelMajor, at(20), at(20)},
			recorded{model.LevelMinor, at(20), at(20)},
			recorded{model.LevelMinor, at(20), time.Time{}})
	})
}

// TestUptimeScope: ids are bounded, other tenants' components answer
// nothing, and the caller needs components:read.
func TestUptimeScope(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		a, b := tenant("upa"), tenant("upb")
		ca := must[*model.Component](t)(s.Components().Create(as(a), model.ComponentInput{DisplayName: model.Some("A")}))
		cb := must[*model.Component](t)(s.Components().Create(as(b), model.ComponentInput{DisplayName: model.Some("B")}))
		if _, _, err := s.Incidents().Create(as(a), model.IncidentCreate{Title: "x", Severity: model.SeverityLow, OccurredAt: time.Now(),
			Affects: affect(ca.ID, model.ImpactOutage)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Uptime().Uptime(as(b), []string{ca.ID, cb.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[cb.ID] == nil || got[cb.ID].Level != model.LevelOperational {
			t.Errorf("tenant b sees %v", got)
		}
		if got, err := s.Uptime().Uptime(as(a), []string{ca.ID}); err != nil || got[ca.ID].Level != model.LevelOutage {
			t.Errorf("tenant a: %v %v", got, err)
		}
		if _, err := s.Uptime().Uptime(context.Background(), []string{ca.ID}); !isCode(err, model.CodeUnauthorized) {
			t.Errorf("no principal: %v", err)
		}
		incOnly := model.WithPrincipal(context.Background(), &model.Principal{TenantID: a, ActorID: "x", Scopes: []model.Scope{model.ScopeIncidentsRead}})
		if _, err := s.Uptime().Uptime(incOnly, []string{ca.ID}); !isCode(err, model.CodeForbidden) {
			t.Errorf("without components:read: %v", err)
		}
		many := make([]string, model.MaxUptimeComponents+1)
		for i := range many {
			many[i] = fmt.Sprintf("cmp_%d", i)
		}
		for _, ids := range [][]string{nil, many} {
			if _, err := s.Uptime().Uptime(as(a), ids); !isCode(err, model.CodeInvalid) {
				t.Errorf("%d ids: %v", len(ids), err)
			}
		}
		// Ids that are no stored string match nothing.
		if got, err := s.Uptime().Uptime(as(a), []string{"a\x00b", "\xff"}); err != nil || len(got) != 0 {
			t.Errorf("odd ids: %v %v", got, err)
		}
		if _, err := s.Uptime().PublicUptime(context.Background(), tenant("nobody"), []string{ca.ID}); !isCode(err, model.CodeNotFound) {
			t.Errorf("unknown tenant: %v", err)
		}
	})
}

// TestUptimeDeletedComponent: a component can go once its incidents are
// over; its history is closed and no longer answered.
func TestUptimeDeletedComponent(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		clock := &stepClock{now: t0}
		s := openStore(t, url, Options{Clock: clock})
		ten := tenant("upd")
		ctx := as(ten)
		comp := must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("Old")}))
		clock.set(t0.Add(time.Hour))
		inc, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "x", Severity: model.SeverityLow, OccurredAt: clock.Now(),
			Affects: affect(comp.ID, model.ImpactMajor)})
		if err != nil {
			t.Fatal(err)
		}
		clock.set(t0.Add(2 * time.Hour))
		if err := s.Components().Delete(ctx, comp.ID); !isCode(err, model.CodeConflict) {
			t.Fatalf("delete while affected: %v", err)
		}
		// The refused delete rolled back: the level is still open.
		checkIntervals(t, "after the refused delete", intervalsOf(t, s, ten, comp.ID), recorded{model.LevelMajor, t0.Add(time.Hour), time.Time{}})
		clock.set(t0.Add(3 * time.Hour))
		if _, _, err := s.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Status: model.Some(model.StatusResolved)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Uptime().Uptime(ctx, []string{comp.ID}); err != nil || got[comp.ID] == nil ||
			got[comp.ID].Windows[0].Totals != (model.UptimeTotals{Operational: time.Hour, Major: 2 * time.Hour}) {
			t.Fatalf("before the delete: %v %v", got, err)
		}
		clock.set(t0.Add(4 * time.Hour))
		if err := s.Components().Delete(ctx, comp.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.Uptime().Uptime(ctx, []string{comp.ID})
		if err != nil || len(got) != 0 {
			t.Errorf("deleted component answered: %v %v", got, err)
		}
		checkIntervals(t, "deleted", intervalsOf(t, s, ten, comp.ID), recorded{model.LevelMajor, t0.Add(time.Hour), t0.Add(3 * time.Hour)})
	})
}

// TestUptimeConcurrentWriters: many writers on three components at once
// (PostgreSQL runs them in parallel) leave each a chain of intervals that
// never overlap, at most one open, whose last level is the component's
// level. X and Z are written by the API (incidents affecting one or both,
// patched, resolved, reopened, deleted), Y by monitoring reports and by
// people resolving or deleting what monitoring opened. (Monitoring's rules
// assume a component is in at most one open incident, which the API does
// not ensure; the workload keeps the two apart.)
func TestUptimeConcurrentWriters(t *testing.T) {
	url := postgresURL(t)
	s := openStore(t, url, Options{MaxOpenConns: 40})
	ten := tenant("upc")
	ctx := as(ten)
	var x, y, z *model.Component
	for _, c := range []struct {
		p    **model.Component
		name string
	}{{&x, "X"}, {&y, "Y"}, {&z, "Z"}} {
		*c.p = must[*model.Component](t)(s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some(c.name)}))
	}
	impacts := []model.Impact{model.ImpactMaintenance, model.ImpactMinor, model.ImpactMajor, model.ImpactOutage}
	var e errs
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			imp := func() model.Impact { return impacts[rng.IntN(len(impacts))] }
			type owned struct {
				id  string
				api bool
			}
			var mine []owned
			var api []string
			for range 25 {
				var err error
				switch op := rng.IntN(7); {
				case op == 0 || len(mine) == 0 || len(api) == 0:
					list := affect(x.ID, imp())
					if rng.IntN(2) == 0 {
						list = append(list, affect(z.ID, imp())...)
					}
					var inc *model.Incident
					if inc, _, err = s.Incidents().Create(ctx, model.IncidentCreate{Title: "w", Severity: model.SeverityLow, OccurredAt: time.Now(), Affects: list}); err == nil {
						mine, api = append(mine, owned{inc.ID, true}), append(api, inc.ID)
					}
				case op == 1:
					var list []model.AffectInput
					for _, c := range []string{x.ID, z.ID} {
						if rng.IntN(3) > 0 {
							list = append(list, affect(c, imp())...)
						}
					}
					_, _, err = s.Incidents().Update(ctx, api[rng.IntN(len(api))], model.IncidentPatch{Affects: model.Some(list)})
				case op == 2:
					_, _, err = s.Incidents().Update(ctx, mine[rng.IntN(len(mine))].id, model.IncidentPatch{Status: model.Some(model.StatusResolved)})
				case op == 3:
					_, _, err = s.Incidents().Update(ctx, api[rng.IntN(len(api))], model.IncidentPatch{Status: model.Some(model.StatusOpen)})
				case op == 4:
					err = s.Incidents().Delete(ctx, mine[rng.IntN(len(mine))].id)
				default:
					var res *model.IngestResult
					if res, err = s.Ingest().Report(ctx, model.ComponentReport{Name: "Y", Impact: imp()}); err == nil && res.Incident != nil {
						mine = append(mine, owned{res.Incident.ID, false})
					}
				}
				if isCode(err, model.CodeConflict) || isCode(err, model.CodeNotFound) {
					err = nil // a report that kept meeting changes; an incident deleted meanwhile
				}
				e.add(err)
			}
		})
	}
	wg.Wait()
	e.report(t)
	states, _, err := s.Ingest().Status(ctx, model.ComponentQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		chain := intervalsOf(t, s, ten, st.Component.ID)
		if len(chain) < 2 {
			t.Errorf("%s: only %d intervals: the writers hardly touched it", st.Component.DisplayName, len(chain))
		}
		for i, r := range chain {
			if !r.end.IsZero() && r.end.Before(r.start) {
				t.Errorf("%s: %v ends before it starts", st.Component.DisplayName, r)
			}
			if i == 0 {
				continue
			}
			prev := chain[i-1]
			if prev.end.IsZero() || r.start.Before(prev.end) {
				t.Errorf("%s: %v overlaps %v", st.Component.DisplayName, r, prev)
			}
		}
		level := model.LevelOperational
		if n := len(chain); n > 0 && chain[n-1].end.IsZero() {
			level = chain[n-1].level
		}
		if want := model.LevelOfWorst(st.Worst()); level != want {
			t.Errorf("%s: recorded level %s, the component is at %s", st.Component.DisplayName, level, want)
		}
	}
}
