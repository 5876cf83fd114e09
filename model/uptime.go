package model

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Uptime history. A component's level at an instant is what the status
// summary shows for it then: the highest impact (LevelOf) among the open
// incidents affecting it, operational when none does. The store records
// every change of it at the moment of the write that made it (so the past
// never changes after the fact: a backdated occurredAt does not rewrite
// it), and a component with no record has been operational since it was
// created.
//
// The rules, applied at each instant:
//
//   - major and outage are down (a partial and a major outage); operational
//     and minor (degraded) are up;
//   - maintenance is neither: time at the maintenance level (an incident's
//     maintenance-type affect) or inside a maintenance window covering the
//     component is counted apart and left out of the ratio, unless the
//     component is down then (an outage declared during planned work is
//     downtime: monitoring opens no incident inside a window, so a person
//     declared it);
//   - a maintenance window counts from when it was both started and
//     scheduled (max(startsAt, createdAt)): one scheduled after the fact
//     does not rewrite history; a window cancelled while under way keeps
//     the part that elapsed;
//   - the ratio is up / (up + down) over the window, from the component's
//     creation when that is later; none when there is no such time;
//   - MTTR over a window is the mean of resolvedAt - occurredAt of the
//     incidents resolved within it (resolved or closed, not deleted) that
//     affect the component at a level other than maintenance.

// Level is a component's status level: operational, or the monitoring
// level of the worst open affect on it. Its values line up with Impact's.
type Level int

// The levels, mildest first (maintenance is apart: see the rules above).
// Status pages call minor "degraded performance", major "partial outage"
// and outage "major outage".
const (
	LevelOperational Level = -1
	LevelMaintenance       = Level(ImpactMaintenance)
	LevelMinor             = Level(ImpactMinor)
	LevelMajor             = Level(ImpactMajor)
	LevelOutage            = Level(ImpactOutage)
)

// LevelOfWorst is the level of a component whose worst open impact is
// worst (-1, as ComponentState.Worst returns when there is none: operational).
func LevelOfWorst(worst Impact) Level {
	if worst < ImpactMaintenance || worst > ImpactOutage {
		return LevelOperational
	}
	return Level(worst)
}

func (l Level) String() string {
	if l == LevelOperational {
		return "operational"
	}
	if l >= LevelMaintenance && l <= LevelOutage {
		return Impact(l).String()
	}
	return strconv.Itoa(int(l))
}

// Down reports whether a component at level l is down (major or outage).
func (l Level) Down() bool { return l >= LevelMajor && l <= LevelOutage }

// EffectiveLevel is how an instant at level l counts, inMaintenance
// telling whether a maintenance window covers the component then: down
// levels stand, otherwise maintenance (the level or a window) is
// maintenance, otherwise l.
func EffectiveLevel(l Level, inMaintenance bool) Level {
	switch {
	case l.Down():
		return l
	case l == LevelMaintenance || inMaintenance:
		return LevelMaintenance
	case l == LevelMinor:
		return LevelMinor
	}
	return LevelOperational
}

// LevelInterval is a recorded stretch of one level: [Start, End), End nil
// while it is the component's current level.
type LevelInterval struct {
	Level Level
	Start time.Time
	End   *time.Time
}

// Span is a stretch of time [Start, End) (a maintenance window's).
type Span struct{ Start, End time.Time }

// Resolution is an incident affecting a component that was resolved.
type Resolution struct{ OccurredAt, ResolvedAt time.Time }

// UptimeTotals is how long a component spent at each effective level.
type UptimeTotals struct {
	Operational, Minor, Major, Outage, Maintenance time.Duration
}

// Up is the time up: operational or minor.
func (t UptimeTotals) Up() time.Duration { return t.Operational + t.Minor }

// Down is the time down: major or outage.
func (t UptimeTotals) Down() time.Duration { return t.Major + t.Outage }

// Observed is all the time counted.
func (t UptimeTotals) Observed() time.Duration { return t.Up() + t.Down() + t.Maintenance }

// Ratio is Up / (Up + Down), false when that is no time at all (nothing
// observed, or only maintenance).
func (t UptimeTotals) Ratio() (float64, bool) {
	d := t.Up() + t.Down()
	if d <= 0 {
		return 0, false
	}
	return float64(t.Up()) / float64(d), true
}

// Worst is the worst level the totals hold time at, maintenance left out
// (operational when none).
func (t UptimeTotals) Worst() Level {
	switch {
	case t.Outage > 0:
		return LevelOutage
	case t.Major > 0:
		return LevelMajor
	case t.Minor > 0:
		return LevelMinor
	}
	return LevelOperational
}

func (t *UptimeTotals) add(l Level, d time.Duration) {
	switch l {
	case LevelMinor:
		t.Minor += d
	case LevelMajor:
		t.Major += d
	case LevelOutage:
		t.Outage += d
	case LevelMaintenance:
		t.Maintenance += d
	default:
		t.Operational += d
	}
}

// UptimeWindow is a component's uptime over one of UptimeWindows.
type UptimeWindow struct {
	// Name is the window's name: "24h", "7d", "30d" or "90d".
	Name string
	// From is the start of what was counted: now minus the window, or the
	// component's creation when later; To is now.
	From, To time.Time
	Totals   UptimeTotals
	// Ratio is Totals.Ratio(), nil when it has none.
	Ratio *float64
	// Resolved counts the incidents resolved in the window (since now
	// minus the window, whatever the component's age) that affected the
	// component at a level other than maintenance; MTTR is their mean time
	// to resolve, nil when there are none.
	Resolved int
	MTTR     *time.Duration
}

// UptimeDay is one UTC day of the daily strip.
type UptimeDay struct {
	// Date is the day's start (00:00 UTC).
	Date time.Time
	// Totals holds the day's counted time: none before the component's
	// creation, and today's only up to now.
	Totals UptimeTotals
	// Worst is Totals.Worst(); Maintenance whether maintenance took any
	// time that day.
	Worst       Level
	Maintenance bool
}

// ComponentUptime is a component's uptime history.
type ComponentUptime struct {
	ComponentID string
	// Level is the component's level now, since Since; InMaintenance
	// whether a maintenance window covers it now.
	Level         Level
	Since         time.Time
	InMaintenance bool
	// Windows are the UptimeWindows in order (24h, 7d, 30d, 90d).
	Windows []UptimeWindow
	// Days is the daily strip: UptimeDays UTC days, oldest first, the last
	// one today.
	Days        []UptimeDay
	GeneratedAt time.Time
}

// UptimeWindows are the windows a ComponentUptime reports, shortest first.
var UptimeWindows = []struct {
	Name   string
	Length time.Duration
}{
	{"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
	{"90d", 90 * 24 * time.Hour},
}

// UptimeDays is the length of the daily strip.
const UptimeDays = 90

// UptimeHorizon is how far back an uptime reads: the longest window
// (which starts before the strip's first midnight).
const UptimeHorizon = 90 * 24 * time.Hour

// MaxUptimeComponents bounds the components of one uptime request.
const MaxUptimeComponents = 100

// UptimeInput is what ComputeUptime reads of one component.
type UptimeInput struct {
	ComponentID string
	Created     time.Time
	// Levels are its recorded intervals, at least those open or ending
	// after now - UptimeHorizon (any order; operational time need not be
	// recorded: it is the time no interval covers).
	Levels []LevelInterval
	// LastEnd is the latest end of any interval recorded for it, older
	// ones included (zero when none): the start of its current
	// operational stretch when no interval is open.
	LastEnd time.Time
	// Maintenance are the stretches maintenance windows covered it (they
	// may overlap), as the rules above count them.
	Maintenance []Span
	// Resolved are its resolved incidents (see UptimeWindow.Resolved).
	Resolved []Resolution
}

// ComputeUptime computes a component's uptime at now from its records.
func ComputeUptime(in UptimeInput, now time.Time) *ComponentUptime {
	now = NormalizeTime(now)
	out := &ComponentUptime{ComponentID: in.ComponentID, GeneratedAt: now}
	out.Level, out.Since = currentLevel(in)
	for _, m := range in.Maintenance {
		if !now.Before(m.Start) && now.Before(m.End) {
			out.InMaintenance = true
		}
	}

	today := now.Truncate(24 * time.Hour) // UTC: time.Truncate counts from the zero time, a UTC midnight
	first := today.AddDate(0, 0, -(UptimeDays - 1))
	out.Days = make([]UptimeDay, UptimeDays)
	for i := range out.Days {
		out.Days[i].Date = first.AddDate(0, 0, i)
	}
	out.Windows = make([]UptimeWindow, len(UptimeWindows))
	starts := make([]time.Time, len(UptimeWindows))
	for i, w := range UptimeWindows {
		starts[i] = now.Add(-w.Length)
		from := starts[i]
		if in.Created.After(from) {
			from = in.Created
		}
		if from.After(now) {
			from = now
		}
		out.Windows[i] = UptimeWindow{Name: w.Name, From: from, To: now}
	}

	for _, seg := range segments(in, now.Add(-UptimeHorizon), now) {
		for i := range out.Windows {
			addOverlap(&out.Windows[i].Totals, seg, out.Windows[i].From, now)
		}
		for i := range out.Days {
			addOverlap(&out.Days[i].Totals, seg, out.Days[i].Date, out.Days[i].Date.Add(24*time.Hour))
		}
	}
	for i := range out.Days {
		d := &out.Days[i]
		d.Worst, d.Maintenance = d.Totals.Worst(), d.Totals.Maintenance > 0
	}
	for i := range out.Windows {
		w := &out.Windows[i]
		if r, ok := w.Totals.Ratio(); ok {
			w.Ratio = &r
		}
		if mttr, n := MeanTimeToResolve(in.Resolved, starts[i], now); n > 0 {
			w.MTTR, w.Resolved = &mttr, n
		}
	}
	return out
}

// currentLevel is the level of the open interval since its start, or
// operational since the latest end recorded (or the creation).
func currentLevel(in UptimeInput) (Level, time.Time) {
	since := in.Created
	if in.LastEnd.After(since) {
		since = in.LastEnd
	}
	var open *LevelInterval
	for i, l := range in.Levels {
		if l.End == nil {
			if open == nil || l.Start.After(open.Start) {
				open = &in.Levels[i]
			}
		} else if l.End.After(since) {
			since = *l.End
		}
	}
	if open != nil {
		return open.Level, open.Start
	}
	return LevelOperational, since
}

// segment is a stretch of one effective level.
type segment struct {
	start, end time.Time
	level      Level
}

// segments cuts [from, to), from the component's creation on, into
// stretches of one effective level. Where recorded intervals overlap (they
// should not), the highest level counts.
func segments(in UptimeInput, from, to time.Time) []segment {
	if in.Created.After(from) {
		from = in.Created
	}
	if !from.Before(to) {
		return nil
	}
	type edge struct {
		at    time.Time
		level Level // LevelOperational + 1 .. : a level; maintenanceEdge: a window
		delta int
	}
	const maintenanceEdge = Level(100)
	var edges []edge
	clip := func(start time.Time, end *time.Time) (time.Time, time.Time, bool) {
		e := to
		if end != nil && end.Before(e) {
			e = *end
		}
		if start.Before(from) {
			start = from
		}
		return start, e, start.Before(e)
	}
	for _, l := range in.Levels {
		if l.Level < LevelMaintenance || l.Level > LevelOutage {
			continue // operational: the absence of the others
		}
		if s, e, ok := clip(l.Start, l.End); ok {
			edges = append(edges, edge{s, l.Level, 1}, edge{e, l.Level, -1})
		}
	}
	for _, m := range in.Maintenance {
		end := m.End
		if s, e, ok := clip(m.Start, &end); ok {
			edges = append(edges, edge{s, maintenanceEdge, 1}, edge{e, maintenanceEdge, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
	var counts [4]int
	windows := 0
	state := func() Level {
		l := LevelOperational
		for i := len(counts) - 1; i >= 0; i-- {
			if counts[i] > 0 {
				l = Level(i)
				break
			}
		}
		return EffectiveLevel(l, windows > 0)
	}
	var out []segment
	emit := func(s, e time.Time, l Level) {
		if !s.Before(e) {
			return
		}
		if n := len(out); n > 0 && out[n-1].level == l && out[n-1].end.Equal(s) {
			out[n-1].end = e
			return
		}
		out = append(out, segment{s, e, l})
	}
	at := from
	for _, e := range edges {
		emit(at, e.at, state())
		at = e.at
		if e.level == maintenanceEdge {
			windows += e.delta
		} else {
			counts[e.level] += e.delta
		}
	}
	emit(at, to, state())
	return out
}

// addOverlap adds the part of seg within [from, to) to t.
func addOverlap(t *UptimeTotals, seg segment, from, to time.Time) {
	s, e := seg.start, seg.end
	if s.Before(from) {
		s = from
	}
	if e.After(to) {
		e = to
	}
	if s.Before(e) {
		t.add(seg.level, e.Sub(s))
	}
}

// MeanTimeToResolve is the mean of ResolvedAt - OccurredAt over the
// resolutions with ResolvedAt in [from, to], and their number.
func MeanTimeToResolve(rs []Resolution, from, to time.Time) (time.Duration, int) {
	var sum time.Duration
	n := 0
	for _, r := range rs {
		if r.ResolvedAt.Before(from) || r.ResolvedAt.After(to) {
			continue
		}
		if d := r.ResolvedAt.Sub(r.OccurredAt); d > 0 {
			sum += d
		}
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return sum / time.Duration(n), n
}

// CheckUptimeComponents validates the component ids of an uptime request
// and returns them sorted, once each. Codes: invalid.
func CheckUptimeComponents(ids []string) ([]string, error) {
	if len(ids) == 0 || len(ids) > MaxUptimeComponents {
		return nil, Invalid("Invalid uptime request", FieldError{Field: "components",
			Message: fmt.Sprintf("components must list 1 to %d component ids", MaxUptimeComponents)})
	}
	for i, id := range ids {
		if id == "" || len(id) > 100 {
			return nil, Invalid("Invalid uptime request", FieldError{Field: "components[" + strconv.Itoa(i) + "]",
				Message: "a component id is 1 to 100 characters"})
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(ids))), nil
}

// UptimeService serves components' uptime history.
type UptimeService interface {
	// Uptime returns the uptime of the caller's tenant's components among
	// componentIDs (1 to MaxUptimeComponents), by id; unknown, deleted and
	// other tenants' components are absent (components:read).
	// Codes: unauthorized, forbidden, invalid.
	Uptime(ctx context.Context, componentIDs []string) (map[string]*ComponentUptime, error)
	// PublicUptime is Uptime of a published tenant, without credentials.
	// Codes: not_found (unknown or unpublished tenant: the same answer), invalid.
	PublicUptime(ctx context.Context, tenant string, componentIDs []string) (map[string]*ComponentUptime, error)
}
