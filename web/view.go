package web

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

// GroupLabel is the component label whose value groups components on the
// page (and, by default, in the widget's list mode).
const GroupLabel = "group"

// The component statuses of the summary, best first: the widget's
// LEVELS, in the same order.
var levels = []string{"operational", "maintenance", "minor", "major", "outage"}

var statusLabel = map[string]string{
	"operational": "Operational", "maintenance": "Under maintenance", "minor": "Degraded performance",
	"major": "Partial outage", "outage": "Major outage",
}

var overallText = map[string]string{
	"operational": "All systems operational", "maintenance": "Maintenance in progress", "incident": "Incident in progress",
	"minor": "Degraded performance", "major": "Partial outage", "outage": "Major outage",
}

var tone = map[string]string{
	"operational": "ok", "maintenance": "info", "incident": "warn", "minor": "warn", "major": "bad", "outage": "bad",
}

// componentStatus is a component's status as the summary names it.
func componentStatus(st model.ComponentState) string {
	if w := st.Worst(); w >= 0 {
		return w.String()
	}
	return "operational"
}

// overall is the one-line status of a summary: the worst component, else
// an open incident, else maintenance under way. widget.js's overall is the
// same rule.
func overall(s *model.StatusSummary, now time.Time) string {
	worst := 0
	for _, st := range s.Components {
		worst = max(worst, slices.Index(levels, componentStatus(st)))
	}
	switch {
	case worst <= 1 && len(s.OpenIncidents) > 0:
		return "incident"
	case worst == 0:
		for _, m := range s.Maintenance {
			if m.Active(now) {
				return "maintenance"
			}
		}
	}
	return levels[worst]
}

type pageView struct {
	Tenant      string
	Level       string
	Overall     string
	Tone        string
	Groups      []groupView
	Open        []incidentView
	Maintenance []maintenanceView
	Days        []dayView
	HistoryDays int
	Generated   time.Time
	Fingerprint string
	CSSHash     string
}

type groupView struct {
	Name       string
	Components []componentView
}

type componentView struct {
	Name, Status, Label, Tone string
	// Uptime is the component's uptime history, nil when there is none.
	Uptime *uptimeView
}

// uptimeView is a component's uptime history as the page shows it.
type uptimeView struct {
	// Days is the daily strip, oldest first, the last one today.
	Days []uptimeDayView
	// Summary sums the strip up for assistive technology.
	Summary string
	// Ratio90 and Ratio30 are the uptime percentages ("99.95%"), empty
	// when there is nothing to count; MTTR the mean time to resolve over
	// 90 days, empty when nothing was resolved, and Resolved how many were.
	Ratio90, Ratio30 string
	MTTR             string
	Resolved         int
}

type uptimeDayView struct {
	// Level is the day's worst level, "none" before the component existed.
	Level string
	// Label is the bar's text alternative, "2026-11-30: outage".
	Label string
}

type incidentView struct {
	ID, Title, Status, Severity string
	Description                 string
	OccurredAt                  time.Time
	ResolvedAt                  *time.Time
	Affects                     []string
	Updates                     []model.IncidentUpdate
}

type maintenanceView struct {
	Description      string
	StartsAt, EndsAt time.Time
	Active           bool
	Components       []string
}

type dayView struct {
	Date      time.Time
	Incidents []incidentView
}

// buildView arranges a summary and its history for the page; uptime, by
// component id, may lack any component (or be nil).
func buildView(tenant string, s *model.StatusSummary, hist []model.PublicIncident, uptime map[string]*model.ComponentUptime, days int, now time.Time) pageView {
	level := overall(s, now)
	v := pageView{Tenant: tenant, Level: level, Overall: overallText[level], Tone: tone[level], HistoryDays: days,
		Generated: s.GeneratedAt, Fingerprint: fingerprint(s)}

	names := map[string]string{}
	affects := map[string][]string{}
	groups := map[string][]componentView{}
	for _, st := range s.Components {
		c := st.Component
		names[c.ID] = c.DisplayName
		status := componentStatus(st)
		g := c.Labels[GroupLabel]
		groups[g] = append(groups[g], componentView{Name: c.DisplayName, Status: status, Label: statusLabel[status], Tone: tone[status],
			Uptime: toUptimeView(c.DisplayName, uptime[c.ID])})
		for _, a := range st.Incidents {
			affects[a.ID] = append(affects[a.ID], c.DisplayName)
		}
	}
	for name, cs := range groups {
		v.Groups = append(v.Groups, groupView{Name: name, Components: cs})
	}
	// Named groups first, alphabetically; ungrouped components last.
	slices.SortFunc(v.Groups, func(a, b groupView) int {
		if (a.Name == "") != (b.Name == "") {
			if a.Name == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	// A single unnamed group is a flat list without a heading.
	if n := len(v.Groups); n > 1 && v.Groups[n-1].Name == "" {
		v.Groups[n-1].Name = "Other"
	}

	open := map[string]bool{}
	for _, inc := range s.OpenIncidents {
		open[inc.ID] = true
		iv := toIncidentView(inc, s.Updates[inc.ID])
		iv.Affects = affects[inc.ID]
		v.Open = append(v.Open, iv)
	}
	for _, m := range s.Maintenance {
		mv := maintenanceView{Description: m.Description, StartsAt: m.StartsAt, EndsAt: m.EndsAt, Active: m.Active(now)}
		for _, id := range m.ComponentIDs {
			mv.Components = append(mv.Components, cmp.Or(names[id], id))
		}
		v.Maintenance = append(v.Maintenance, mv)
	}

	// Past incidents by the UTC day they occurred, newest day first, every
	// day shown (an empty day says so).
	today := now.UTC().Truncate(24 * time.Hour)
	byDay := map[time.Time][]incidentView{}
	for _, h := range hist {
		if open[h.Incident.ID] {
			continue
		}
		d := h.Incident.OccurredAt.UTC().Truncate(24 * time.Hour)
		byDay[d] = append(byDay[d], toIncidentView(h.Incident, h.Updates))
	}
	for i := range days {
		d := today.AddDate(0, 0, -i)
		v.Days = append(v.Days, dayView{Date: d, Incidents: byDay[d]})
	}
	return v
}

// dayLevel is a day's worst level as the strip colours it: maintenance
// ranks between operational and minor, as in levels; "none" when the day
// counted no time (before the component existed).
func dayLevel(d model.UptimeDay) string {
	switch {
	case d.Totals.Observed() <= 0:
		return "none"
	case d.Worst == model.LevelOperational && d.Maintenance:
		return "maintenance"
	}
	return d.Worst.String()
}

var dayNoun = map[string]string{
	"operational": "operational", "maintenance": "with maintenance", "minor": "with degraded performance",
	"major": "with a partial outage", "outage": "with a major outage", "none": "without data",
}

// toUptimeView arranges the uptime of the component called name for the
// page (nil for nil).
func toUptimeView(name string, u *model.ComponentUptime) *uptimeView {
	if u == nil || len(u.Days) == 0 {
		return nil
	}
	v := &uptimeView{}
	count := map[string]int{}
	for _, d := range u.Days {
		l := dayLevel(d)
		count[l]++
		label := l
		if l == "none" {
			label = "no data"
		}
		v.Days = append(v.Days, uptimeDayView{Level: l, Label: d.Date.UTC().Format(time.DateOnly) + ": " + label})
	}
	var parts []string
	for _, l := range append(slices.Clone(levels), "none") {
		if n := count[l]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+plural(n, "day", "days")+" "+dayNoun[l])
		}
	}
	v.Summary = name + ", last " + strconv.Itoa(len(u.Days)) + " days: " + strings.Join(parts, ", ")
	for _, w := range u.Windows {
		switch w.Name {
		case "90d":
			v.Ratio90 = percent(w.Ratio)
			if w.MTTR != nil && w.Resolved > 0 {
				v.MTTR, v.Resolved = duration(*w.MTTR), w.Resolved
			}
		case "30d":
			v.Ratio30 = percent(w.Ratio)
		}
	}
	return v
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// percent formats an uptime ratio to two decimals, never rounding a ratio
// short of 1 up to 100%; empty for none.
func percent(r *float64) string {
	if r == nil {
		return ""
	}
	p := math.Round(*r*10000) / 100
	if p >= 100 && *r < 1 {
		p = 99.99
	}
	return strconv.FormatFloat(p, 'f', 2, 64) + "%"
}

// duration formats a mean time to resolve in its two largest units.
func duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d " + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h"
}

func toIncidentView(inc *model.Incident, updates []model.IncidentUpdate) incidentView {
	iv := incidentView{ID: inc.ID, Title: inc.Title, Status: string(inc.Status), Severity: string(inc.Severity),
		OccurredAt: inc.OccurredAt, ResolvedAt: inc.ResolvedAt, Updates: updates}
	if inc.Description != nil {
		iv.Description = *inc.Description
	}
	return iv
}

// fingerprint names what the page shows of a summary, exactly as
// widget.js's fingerprint computes it from the summary's JSON, so the
// page's script skips a refresh when its first event shows nothing new.
func fingerprint(s *model.StatusSummary) string {
	var b strings.Builder
	for i, st := range s.Components {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(st.Component.ID + "=" + componentStatus(st))
	}
	b.WriteByte(';')
	for i, inc := range s.OpenIncidents {
		if i > 0 {
			b.WriteByte(',')
		}
		last := 0
		if ups := s.Updates[inc.ID]; len(ups) > 0 {
			last = ups[len(ups)-1].Order
		}
		b.WriteString(inc.ID + "@" + inc.UpdatedAt.UTC().Format(time.RFC3339Nano) + "#" + strconv.Itoa(last))
	}
	b.WriteByte(';')
	for i, m := range s.Maintenance {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.ID)
	}
	return b.String()
}
