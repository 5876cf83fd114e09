package graph

import (
	"time"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// toUptimes lists the uptime of ids in the order asked, once each, unknown
// ones left out.
func toUptimes(ids []string, all map[string]*model.ComponentUptime) []gqlmodel.ComponentUptime {
	out := []gqlmodel.ComponentUptime{}
	seen := map[string]bool{}
	for _, id := range ids {
		if u := all[id]; u != nil && !seen[id] {
			seen[id] = true
			out = append(out, toUptime(u))
		}
	}
	return out
}

func toSeconds(t model.UptimeTotals) *gqlmodel.UptimeSeconds {
	return &gqlmodel.UptimeSeconds{Operational: t.Operational.Seconds(), Minor: t.Minor.Seconds(), Major: t.Major.Seconds(),
		Outage: t.Outage.Seconds(), Maintenance: t.Maintenance.Seconds()}
}

func toUptime(u *model.ComponentUptime) gqlmodel.ComponentUptime {
	out := gqlmodel.ComponentUptime{ComponentID: u.ComponentID, Status: u.Level.String(), Since: u.Since, InMaintenance: u.InMaintenance,
		GeneratedAt: u.GeneratedAt, Windows: make([]gqlmodel.UptimeWindow, len(u.Windows)), Days: make([]gqlmodel.UptimeDay, len(u.Days))}
	for i, w := range u.Windows {
		gw := gqlmodel.UptimeWindow{Window: w.Name, From: w.From, To: w.To, Uptime: w.Ratio, Seconds: toSeconds(w.Totals), ResolvedIncidents: w.Resolved}
		if w.MTTR != nil {
			s := w.MTTR.Seconds()
			gw.MttrSeconds = &s
		}
		out.Windows[i] = gw
	}
	for i, d := range u.Days {
		out.Days[i] = gqlmodel.UptimeDay{Date: d.Date.UTC().Format(time.DateOnly), Worst: d.Worst.String(), Maintenance: d.Maintenance, Seconds: toSeconds(d.Totals)}
	}
	return out
}
