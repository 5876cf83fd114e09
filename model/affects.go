package model

import (
	"fmt"
	"slices"
	"strings"
)

// MonitoringAffect is the affect a monitoring report of level i creates:
// the level's built-in type at the level's value.
func MonitoringAffect(component string, i Impact) Affect {
	return Affect{ComponentID: component, Impact: i, TypeID: i.TypeID(), Severity: i.Value()}
}

// ResolveAffects turns validated inputs into affects: a left-out severity
// of a built-in type is its level's value, and the level follows LevelOf.
// The result is ordered by component id, as the store returns affects.
func ResolveAffects(in []AffectInput) []Affect {
	out := make([]Affect, 0, len(in))
	for _, a := range in {
		sev := 0
		if a.Severity != nil {
			sev = *a.Severity
		} else if t, ok := BuiltInImpactType(a.TypeID); ok {
			sev = t.Level.Value()
		}
		out = append(out, Affect{ComponentID: a.ComponentID, TypeID: a.TypeID, Severity: sev, Impact: LevelOf(a.TypeID, sev)})
	}
	slices.SortFunc(out, func(a, b Affect) int { return strings.Compare(a.ComponentID, b.ComponentID) })
	return out
}

// AffectsDiff is what replacing an incident's affects changes.
type AffectsDiff struct {
	Added, Removed []Affect
	// Changed holds the new form of affects whose type or severity moved.
	Changed []Affect
}

// Empty reports whether the replacement changes nothing.
func (d AffectsDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// Components lists every component the diff touches, sorted.
func (d AffectsDiff) Components() []string {
	var ids []string
	for _, l := range [][]Affect{d.Added, d.Removed, d.Changed} {
		for _, a := range l {
			ids = append(ids, a.ComponentID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// DiffAffects compares the current affects with their replacement.
func DiffAffects(cur, next []Affect) AffectsDiff {
	var d AffectsDiff
	old := map[string]Affect{}
	for _, a := range cur {
		old[a.ComponentID] = a
	}
	for _, a := range next {
		o, ok := old[a.ComponentID]
		switch {
		case !ok:
			d.Added = append(d.Added, a)
		case o.TypeID != a.TypeID || o.Severity != a.Severity:
			d.Changed = append(d.Changed, a)
		}
		delete(old, a.ComponentID)
	}
	for _, a := range cur {
		if _, gone := old[a.ComponentID]; gone {
			d.Removed = append(d.Removed, a)
		}
	}
	return d
}

// AffectsUpdate is the timeline entry of a change of affected components;
// name gives a component's display name (the id when it returns "").
func AffectsUpdate(d AffectsDiff, name func(id string) string) UpdateInput {
	label := func(id string) string {
		if n := name(id); n != "" {
			return n
		}
		return id
	}
	var parts []string
	for _, a := range d.Added {
		parts = append(parts, fmt.Sprintf("added %s (%s, severity %d)", label(a.ComponentID), a.TypeID, a.Severity))
	}
	for _, a := range d.Changed {
		parts = append(parts, fmt.Sprintf("%s now %s, severity %d", label(a.ComponentID), a.TypeID, a.Severity))
	}
	for _, a := range d.Removed {
		parts = append(parts, "removed "+label(a.ComponentID))
	}
	return UpdateInput{DisplayName: "Affected components changed", Description: truncateRunes(strings.Join(parts, "; "), MaxDescriptionLen)}
}

// AffectsChange is the audit form of a list of affects.
func AffectsChange(as []Affect) []map[string]any {
	out := make([]map[string]any, len(as))
	for i, a := range as {
		out[i] = map[string]any{"reference": a.ComponentID, "type": a.TypeID, "severity": a.Severity}
	}
	return out
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
