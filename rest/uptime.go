package rest

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

// uptimeJSON is a component's uptime history.
type uptimeJSON struct {
	ComponentID   string             `json:"componentId"`
	Status        string             `json:"status"`
	Since         string             `json:"since"`
	InMaintenance bool               `json:"inMaintenance"`
	GeneratedAt   string             `json:"generatedAt"`
	Windows       []uptimeWindowJSON `json:"windows"`
	Days          []uptimeDayJSON    `json:"days"`
}

type uptimeSecondsJSON struct {
	Operational float64 `json:"operational"`
	Minor       float64 `json:"minor"`
	Major       float64 `json:"major"`
	Outage      float64 `json:"outage"`
	Maintenance float64 `json:"maintenance"`
}

type uptimeWindowJSON struct {
	Window            string            `json:"window"`
	From              string            `json:"from"`
	To                string            `json:"to"`
	Uptime            *float64          `json:"uptime"`
	Seconds           uptimeSecondsJSON `json:"seconds"`
	ResolvedIncidents int               `json:"resolvedIncidents"`
	MTTRSeconds       *float64          `json:"mttrSeconds"`
}

type uptimeDayJSON struct {
	Date        string            `json:"date"`
	Worst       string            `json:"worst"`
	Maintenance bool              `json:"maintenance"`
	Seconds     uptimeSecondsJSON `json:"seconds"`
}

func toSecondsJSON(t model.UptimeTotals) uptimeSecondsJSON {
	return uptimeSecondsJSON{Operational: t.Operational.Seconds(), Minor: t.Minor.Seconds(), Major: t.Major.Seconds(),
		Outage: t.Outage.Seconds(), Maintenance: t.Maintenance.Seconds()}
}

func toUptimeJSON(u *model.ComponentUptime) uptimeJSON {
	out := uptimeJSON{ComponentID: u.ComponentID, Status: u.Level.String(), Since: formatTime(u.Since), InMaintenance: u.InMaintenance,
		GeneratedAt: formatTime(u.GeneratedAt), Windows: make([]uptimeWindowJSON, len(u.Windows)), Days: make([]uptimeDayJSON, len(u.Days))}
	for i, w := range u.Windows {
		wj := uptimeWindowJSON{Window: w.Name, From: formatTime(w.From), To: formatTime(w.To), Uptime: w.Ratio,
			Seconds: toSecondsJSON(w.Totals), ResolvedIncidents: w.Resolved}
		if w.MTTR != nil {
			s := w.MTTR.Seconds()
			wj.MTTRSeconds = &s
		}
		out.Windows[i] = wj
	}
	for i, d := range u.Days {
		out.Days[i] = uptimeDayJSON{Date: d.Date.UTC().Format(time.DateOnly), Worst: d.Worst.String(), Maintenance: d.Maintenance,
			Seconds: toSecondsJSON(d.Totals)}
	}
	return out
}

type uptimeHandlers struct{ svc model.UptimeService }

// get serves GET /v1/components/{id}/uptime.
func (h uptimeHandlers) get(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	id := chi.URLParam(r, "id")
	all, err := h.svc.Uptime(r.Context(), []string{id})
	if err != nil {
		writeError(w, r, err)
		return
	}
	u := all[id]
	if u == nil {
		writeError(w, r, model.NotFound("Component", id))
		return
	}
	writeJSON(w, http.StatusOK, toUptimeJSON(u))
}

// public serves GET /v1/public/{tenant}/uptime?component=...: the listed
// components' uptime of a published tenant, in the order asked, unknown
// ones left out.
func (h publicHandlers) uptime(w http.ResponseWriter, r *http.Request) {
	q := readQuery(r.URL.Query(), params{"component": list})
	ids := q.list("component")
	if len(ids) == 0 {
		q.fail("component", "component must name 1 to 100 component ids")
	}
	if err := q.err(); err != nil {
		writeError(w, r, err)
		return
	}
	if _, ok := h.admit(w, r); !ok {
		return
	}
	all, err := h.uptimeSvc.PublicUptime(r.Context(), chi.URLParam(r, "tenant"), ids)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Components []uptimeJSON `json:"components"`
	}{Components: []uptimeJSON{}}
	seen := map[string]bool{}
	for _, id := range ids {
		if u := all[id]; u != nil && !seen[id] {
			seen[id] = true
			out.Components = append(out.Components, toUptimeJSON(u))
		}
	}
	w.Header().Set("Cache-Control", "public, max-age=30")
	writeJSON(w, http.StatusOK, out)
}
