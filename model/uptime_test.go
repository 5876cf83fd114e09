package model

import (
	"testing"
	"time"
)

// uptimeNow is 12:00 UTC, so that a 24h window crosses one midnight.
var uptimeNow = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return uptimeNow.Add(d) }

func endAt(d time.Duration) *time.Time { t := at(d); return &t }

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

func TestEffectiveLevel(t *testing.T) {
	cases := []struct {
		l     Level
		maint bool
		want  Level
	}{
		{LevelOperational, false, LevelOperational},
		{LevelOperational, true, LevelMaintenance},
		{LevelMaintenance, false, LevelMaintenance},
		{LevelMaintenance, true, LevelMaintenance},
		{LevelMinor, false, LevelMinor},
		{LevelMinor, true, LevelMaintenance},
		{LevelMajor, false, LevelMajor},
		{LevelMajor, true, LevelMajor},
		{LevelOutage, false, LevelOutage},
		{LevelOutage, true, LevelOutage},
		{Level(7), false, LevelOperational},
	}
	for _, c := range cases {
		if got := EffectiveLevel(c.l, c.maint); got != c.want {
			t.Errorf("EffectiveLevel(%s, %v) = %s, want %s", c.l, c.maint, got, c.want)
		}
	}
	for l, want := range map[Level]string{LevelOperational: "operational", LevelMaintenance: "maintenance", LevelMinor: "minor",
		LevelMajor: "major", LevelOutage: "outage", Level(9): "9", Level(-2): "-2"} {
		if l.String() != want {
			t.Errorf("%d: %q, want %q", int(l), l.String(), want)
		}
	}
	for i, want := range map[Impact]Level{-1: LevelOperational, ImpactMaintenance: LevelMaintenance, ImpactMinor: LevelMinor,
		ImpactMajor: LevelMajor, ImpactOutage: LevelOutage, 4: LevelOperational} {
		if got := LevelOfWorst(i); got != want {
			t.Errorf("LevelOfWorst(%d) = %s, want %s", i, got, want)
		}
	}
	for l, down := range map[Level]bool{LevelOperational: false, LevelMaintenance: false, LevelMinor: false, LevelMajor: true, LevelOutage: true, 4: false} {
		if l.Down() != down {
			t.Errorf("%s.Down() = %v", l, !down)
		}
	}
}

// totals builds UptimeTotals in the order operational, minor, major, outage, maintenance.
func totals(op, minor, major, outage, maint time.Duration) UptimeTotals {
	return UptimeTotals{Operational: op, Minor: minor, Major: major, Outage: outage, Maintenance: maint}
}

func TestComputeUptimeWindows(t *testing.T) {
	old := at(-200 * day)
	cases := []struct {
		name string
		in   UptimeInput
		// want are the 24h and 7d windows' totals
		want24, want7d UptimeTotals
		ratio24        float64 // -1: none
	}{
		{"never changed", UptimeInput{Created: old},
			totals(day, 0, 0, 0, 0), totals(7*day, 0, 0, 0, 0), 1},
		{"created within the 7 days", UptimeInput{Created: at(-2 * day)},
			totals(day, 0, 0, 0, 0), totals(2*day, 0, 0, 0, 0), 1},
		{"created just now", UptimeInput{Created: uptimeNow},
			UptimeTotals{}, UptimeTotals{}, -1},
		{"outage crossing the 24h window's start", UptimeInput{Created: old, Levels: []LevelInterval{{LevelOutage, at(-25 * hour), endAt(-23 * hour)}}},
			totals(23*hour, 0, 0, hour, 0), totals(7*day-2*hour, 0, 0, 2*hour, 0), 23.0 / 24},
		{"open major interval", UptimeInput{Created: old, Levels: []LevelInterval{{LevelMajor, at(-30 * time.Minute), nil}}},
			totals(day-30*time.Minute, 0, 30*time.Minute, 0, 0), totals(7*day-30*time.Minute, 0, 30*time.Minute, 0, 0), 47.0 / 48},
		{"interval before creation is clipped", UptimeInput{Created: at(-hour), Levels: []LevelInterval{{LevelOutage, at(-3 * hour), endAt(-30 * time.Minute)}}},
			totals(30*time.Minute, 0, 0, 30*time.Minute, 0), totals(30*time.Minute, 0, 0, 30*time.Minute, 0), 0.5},
		{"minor counts up", UptimeInput{Created: old, Levels: []LevelInterval{{LevelMinor, at(-6 * hour), endAt(-4 * hour)}}},
			totals(22*hour, 2*hour, 0, 0, 0), totals(7*day-2*hour, 2*hour, 0, 0, 0), 1},
		{"a chain of levels", UptimeInput{Created: old, Levels: []LevelInterval{
			{LevelMinor, at(-10 * hour), endAt(-8 * hour)}, {LevelOutage, at(-8 * hour), endAt(-7 * hour)}, {LevelMajor, at(-7 * hour), endAt(-4 * hour)}}},
			totals(18*hour, 2*hour, 3*hour, hour, 0), totals(7*day-6*hour, 2*hour, 3*hour, hour, 0), 20.0 / 24},
		{"overlapping records: the highest counts", UptimeInput{Created: old, Levels: []LevelInterval{
			{LevelMinor, at(-10 * hour), endAt(-2 * hour)}, {LevelOutage, at(-6 * hour), endAt(-5 * hour)}}},
			totals(16*hour, 7*hour, 0, hour, 0), totals(7*day-8*hour, 7*hour, 0, hour, 0), 23.0 / 24},
		{"zero-length and future intervals count nothing", UptimeInput{Created: old, Levels: []LevelInterval{
			{LevelOutage, at(-2 * hour), endAt(-2 * hour)}, {LevelOutage, at(hour), nil}, {LevelOutage, at(-hour), endAt(-2 * hour)}}},
			totals(day, 0, 0, 0, 0), totals(7*day, 0, 0, 0, 0), 1},
		{"intervals older than the windows", UptimeInput{Created: old, Levels: []LevelInterval{{LevelOutage, at(-100 * day), endAt(-95 * day)}}},
			totals(day, 0, 0, 0, 0), totals(7*day, 0, 0, 0, 0), 1},
		{"maintenance level", UptimeInput{Created: old, Levels: []LevelInterval{{LevelMaintenance, at(-4 * hour), endAt(-2 * hour)}}},
			totals(22*hour, 0, 0, 0, 2*hour), totals(7*day-2*hour, 0, 0, 0, 2*hour), 1},
		{"overlapping windows count once", UptimeInput{Created: old, Maintenance: []Span{{at(-5 * hour), at(-3 * hour)}, {at(-4 * hour), at(-2 * hour)}, {at(-4 * hour), at(-3 * hour)}}},
			totals(21*hour, 0, 0, 0, 3*hour), totals(7*day-3*hour, 0, 0, 0, 3*hour), 1},
		{"a window hides minor, not an outage", UptimeInput{Created: old,
			Levels:      []LevelInterval{{LevelMinor, at(-6 * hour), endAt(-5 * hour)}, {LevelOutage, at(-5 * hour), endAt(-4 * hour)}, {LevelMinor, at(-4 * hour), endAt(-hour)}},
			Maintenance: []Span{{at(-6 * hour), at(-2 * hour)}}},
			totals(19*hour, hour, 0, hour, 3*hour), totals(7*day-5*hour, hour, 0, hour, 3*hour), 20.0 / 21},
		{"a window under way", UptimeInput{Created: old, Maintenance: []Span{{at(-hour), at(hour)}}},
			totals(23*hour, 0, 0, 0, hour), totals(7*day-hour, 0, 0, 0, hour), 1},
		{"only maintenance: no ratio", UptimeInput{Created: at(-2 * hour), Maintenance: []Span{{at(-3 * hour), at(hour)}}},
			totals(0, 0, 0, 0, 2*hour), totals(0, 0, 0, 0, 2*hour), -1},
		{"a window that ended before the horizon", UptimeInput{Created: old, Maintenance: []Span{{at(-100 * day), at(-91 * day)}}},
			totals(day, 0, 0, 0, 0), totals(7*day, 0, 0, 0, 0), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := ComputeUptime(c.in, uptimeNow)
			if len(u.Windows) != 4 {
				t.Fatalf("%d windows", len(u.Windows))
			}
			for i, name := range []string{"24h", "7d", "30d", "90d"} {
				w := u.Windows[i]
				if w.Name != name || !w.To.Equal(uptimeNow) {
					t.Errorf("window %d: %s to %s", i, w.Name, w.To)
				}
				from := uptimeNow.Add(-UptimeWindows[i].Length)
				if c.in.Created.After(from) {
					from = c.in.Created
				}
				if !w.From.Equal(from) {
					t.Errorf("%s: from %s, want %s", name, w.From, from)
				}
				if got, want := w.Totals.Observed(), uptimeNow.Sub(from); got != want {
					t.Errorf("%s: observed %s, want %s", name, got, want)
				}
			}
			if got := u.Windows[0].Totals; got != c.want24 {
				t.Errorf("24h: %+v, want %+v", got, c.want24)
			}
			if got := u.Windows[1].Totals; got != c.want7d {
				t.Errorf("7d: %+v, want %+v", got, c.want7d)
			}
			r := u.Windows[0].Ratio
			switch {
			case c.ratio24 < 0 && r != nil:
				t.Errorf("24h ratio %v, want none", *r)
			case c.ratio24 >= 0 && (r == nil || *r != c.ratio24):
				t.Errorf("24h ratio %v, want %v", r, c.ratio24)
			}
			// The longer windows hold the shorter ones.
			for i := 1; i < 4; i++ {
				a, b := u.Windows[i-1].Totals, u.Windows[i].Totals
				if a.Operational > b.Operational || a.Minor > b.Minor || a.Major > b.Major || a.Outage > b.Outage || a.Maintenance > b.Maintenance {
					t.Errorf("%s %+v exceeds %s %+v", u.Windows[i-1].Name, a, u.Windows[i].Name, b)
				}
			}
			// The strip adds up to the observed part of its 90 days.
			var sum time.Duration
			for _, d := range u.Days {
				sum += d.Totals.Observed()
			}
			first := u.Days[0].Date
			if c.in.Created.After(first) {
				first = c.in.Created
			}
			if want := max(uptimeNow.Sub(first), 0); sum != want {
				t.Errorf("strip observes %s, want %s", sum, want)
			}
		})
	}
}

func TestComputeUptimeDays(t *testing.T) {
	today := time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)
	in := UptimeInput{Created: at(-200 * day),
		Levels: []LevelInterval{
			// 23:00 the day before yesterday to 01:00 yesterday: both days.
			{LevelOutage, today.Add(-25 * hour), ptrTime(today.Add(-23 * hour))},
			// yesterday, minor for 2 hours, then major for 30 minutes
			{LevelMinor, today.Add(-10 * hour), ptrTime(today.Add(-8 * hour))},
			{LevelMajor, today.Add(-8 * hour), ptrTime(today.Add(-450 * time.Minute))},
			// 89 days ago (the strip's first day), 1 hour of maintenance-level
			{LevelMaintenance, today.Add(-89 * day), ptrTime(today.Add(-89*day + hour))},
			// today: minor since 11:00, still open
			{LevelMinor, today.Add(11 * hour), nil},
		},
		// a window over the midnight that began the day before yesterday
		Maintenance: []Span{{today.Add(-2*day - 30*time.Minute), today.Add(-2*day + 30*time.Minute)}},
	}
	u := ComputeUptime(in, uptimeNow)
	if len(u.Days) != UptimeDays {
		t.Fatalf("%d days", len(u.Days))
	}
	if !u.Days[0].Date.Equal(today.AddDate(0, 0, -89)) || !u.Days[89].Date.Equal(today) {
		t.Fatalf("strip from %s to %s", u.Days[0].Date, u.Days[89].Date)
	}
	want := map[int]UptimeDay{
		89: {Worst: LevelMinor, Totals: totals(11*hour, hour, 0, 0, 0)},
		88: {Worst: LevelOutage, Totals: totals(20*hour+30*time.Minute, 2*hour, 30*time.Minute, hour, 0)},
		87: {Worst: LevelOutage, Totals: totals(23*hour-30*time.Minute, 0, 0, hour, 30*time.Minute), Maintenance: true},
		86: {Worst: LevelOperational, Totals: totals(day-30*time.Minute, 0, 0, 0, 30*time.Minute), Maintenance: true},
		0:  {Worst: LevelOperational, Totals: totals(23*hour, 0, 0, 0, hour), Maintenance: true},
	}
	for i, d := range u.Days {
		w, ok := want[i]
		if !ok {
			w = UptimeDay{Worst: LevelOperational, Totals: totals(day, 0, 0, 0, 0)}
		}
		if d.Worst != w.Worst || d.Totals != w.Totals || d.Maintenance != w.Maintenance {
			t.Errorf("day %d (%s): %s %+v maintenance %v, want %s %+v %v", i, d.Date.Format(time.DateOnly), d.Worst, d.Totals, d.Maintenance,
				w.Worst, w.Totals, w.Maintenance)
		}
	}
	if u.Level != LevelMinor || !u.Since.Equal(today.Add(11*hour)) || u.InMaintenance {
		t.Errorf("now: %s since %s, maintenance %v", u.Level, u.Since, u.InMaintenance)
	}
	// A component created yesterday at 18:00: nothing before it.
	in.Created = today.Add(-6 * hour)
	u = ComputeUptime(in, uptimeNow)
	for i, d := range u.Days[:88] {
		if d.Totals != (UptimeTotals{}) || d.Worst != LevelOperational || d.Maintenance {
			t.Errorf("day %d before creation: %+v", i, d)
		}
	}
	if got, w := u.Days[88].Totals, totals(6*hour, 0, 0, 0, 0); got != w {
		t.Errorf("creation day: %+v, want %+v", got, w)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestCurrentLevel(t *testing.T) {
	created := at(-10 * day)
	cases := []struct {
		name  string
		in    UptimeInput
		level Level
		since time.Time
		maint bool
	}{
		{"never changed", UptimeInput{Created: created}, LevelOperational, created, false},
		{"open interval", UptimeInput{Created: created, Levels: []LevelInterval{{LevelMajor, at(-hour), nil}, {LevelMinor, at(-2 * hour), endAt(-hour)}}}, LevelMajor, at(-hour), false},
		{"operational since the last end", UptimeInput{Created: created, Levels: []LevelInterval{{LevelMinor, at(-3 * hour), endAt(-2 * hour)}}}, LevelOperational, at(-2 * hour), false},
		{"operational since an end older than the horizon", UptimeInput{Created: at(-400 * day), LastEnd: at(-100 * day)}, LevelOperational, at(-100 * day), false},
		{"in a window", UptimeInput{Created: created, Maintenance: []Span{{at(-hour), at(time.Second)}}}, LevelOperational, created, true},
		{"a window that ends now has ended", UptimeInput{Created: created, Maintenance: []Span{{at(-hour), uptimeNow}}}, LevelOperational, created, false},
		{"a window that starts now has begun", UptimeInput{Created: created, Maintenance: []Span{{uptimeNow, at(hour)}}}, LevelOperational, created, true},
	}
	for _, c := range cases {
		u := ComputeUptime(c.in, uptimeNow)
		if u.Level != c.level || !u.Since.Equal(c.since) || u.InMaintenance != c.maint {
			t.Errorf("%s: %s since %s, maintenance %v; want %s since %s, %v", c.name, u.Level, u.Since, u.InMaintenance, c.level, c.since, c.maint)
		}
	}
}

func TestMeanTimeToResolve(t *testing.T) {
	rs := []Resolution{
		{at(-3 * hour), at(-2 * hour)},       // 1h
		{at(-26 * hour), at(-23 * hour)},     // 3h
		{at(-30 * hour), at(-24 * hour)},     // 6h, resolved exactly at the 24h window's start
		{at(-10 * day), at(-8 * day)},        // 2 days
		{at(-hour), at(time.Second)},         // resolved in the future: never counted
		{at(-100 * day), at(-95 * day)},      // older than every window
		{at(-time.Minute), at(-time.Minute)}, // 0
	}
	cases := []struct {
		from time.Time
		mean time.Duration
		n    int
	}{
		{at(-24 * hour), (hour + 3*hour + 6*hour) / 4, 4},
		{at(-7 * day), (hour + 3*hour + 6*hour) / 4, 4},
		{at(-30 * day), (hour + 3*hour + 6*hour + 48*hour) / 5, 5},
		{at(-time.Minute), 0, 1},
		{at(-time.Second), 0, 0},
	}
	for _, c := range cases {
		mean, n := MeanTimeToResolve(rs, c.from, uptimeNow)
		if mean != c.mean || n != c.n {
			t.Errorf("from %s: %s over %d, want %s over %d", c.from, mean, n, c.mean, c.n)
		}
	}
	u := ComputeUptime(UptimeInput{Created: at(-2 * hour), Resolved: rs}, uptimeNow)
	// MTTR windows are nominal: the component's age does not shorten them.
	if w := u.Windows[0]; w.Resolved != 4 || w.MTTR == nil || *w.MTTR != 150*time.Minute {
		t.Errorf("24h: %d resolved, MTTR %v", w.Resolved, w.MTTR)
	}
	if w := u.Windows[3]; w.Resolved != 5 {
		t.Errorf("90d: %d resolved", w.Resolved)
	}
	if u := ComputeUptime(UptimeInput{Created: at(-2 * hour)}, uptimeNow); u.Windows[0].MTTR != nil || u.Windows[0].Resolved != 0 {
		t.Errorf("no incidents: MTTR %v", u.Windows[0].MTTR)
	}
}

func TestCheckUptimeComponents(t *testing.T) {
	many := make([]string, MaxUptimeComponents+1)
	for i := range many {
		many[i] = "cmp_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for _, bad := range [][]string{nil, {}, many, {"cmp_a", ""}, {string(make([]byte, 101))}} {
		if _, err := CheckUptimeComponents(bad); err == nil || err.(*Error).Code != CodeInvalid {
			t.Errorf("%d ids: %v", len(bad), err)
		}
	}
	got, err := CheckUptimeComponents([]string{"cmp_b", "cmp_a", "cmp_b"})
	if err != nil || len(got) != 2 || got[0] != "cmp_a" || got[1] != "cmp_b" {
		t.Errorf("%v %v", got, err)
	}
	if _, err := CheckUptimeComponents(many[:MaxUptimeComponents]); err != nil {
		t.Error(err)
	}
}
