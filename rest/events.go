package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// eventJSON is one server-sent event's data.
type eventJSON struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	At       string       `json:"at"`
	Incident incidentJSON `json:"incident"`
}

// SSEKeepAlive is how often an idle stream sends a comment, so that proxies
// keep it open and dead clients are noticed.
var SSEKeepAlive = 15 * time.Second

type eventHandlers struct {
	hub *live.Hub
	log model.EventLog
	rel model.RelationService
}

// sseFrame is one server-sent event: id ("": none), event type, JSON data.
type sseFrame struct {
	id   string
	typ  string
	data any
}

// serveSSE opens a stream with open, whose emit queues frames and whose end
// says why it stopped, and writes the frames as server-sent events with
// keep-alive comments until the client leaves or the stream ends (with an
// `event: error` frame when it ends for a reason).
func serveSSE(w http.ResponseWriter, r *http.Request, open func(emit func(sseFrame) bool, end func(error)) error) {
	ctx := r.Context()
	frames := make(chan sseFrame, 16)
	var ended error
	err := open(func(f sseFrame) bool {
		select {
		case frames <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}, func(why error) {
		ended = why // read only after frames is closed
		close(frames)
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n\n")
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(SSEKeepAlive)
	defer tick.Stop()
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if ended != nil {
					d := model.AsError(ended)
					b, _ := json.Marshal(map[string]string{"error": d.Code.WireName(), "message": d.Message})
					fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
					_ = rc.Flush()
				}
				return
			}
			b, err := json.Marshal(f.data)
			if err != nil {
				return
			}
			if f.id != "" {
				fmt.Fprintf(w, "id: %s\n", f.id)
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", f.typ, b)
			if rc.Flush() != nil {
				return
			}
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			if rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			for range frames { // let the forwarder finish before the handler returns
			}
			return
		}
	}
}

// stream serves GET /v1/incidents/events: the tenant's incident changes as
// server-sent events. Last-Event-ID (or ?after=) resumes after an event id.
func (h eventHandlers) stream(w http.ResponseWriter, r *http.Request) {
	f, after, err := parseEventQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	serveSSE(w, r, func(emit func(sseFrame) bool, end func(error)) error {
		return h.hub.Open(r.Context(), h.log, f, after, func(e *model.Event) bool {
			return emit(sseFrame{id: e.Cursor, typ: string(e.Type), data: eventJSON{ID: e.Cursor,
				Type: string(e.Type), At: formatTime(e.At), Incident: toIncidentJSON(e.Incident)}})
		}, end)
	})
}

// componentStream serves GET /v1/components/events: component status
// changes as server-sent events (each component once, then on every change).
func (h eventHandlers) componentStream(w http.ResponseWriter, r *http.Request) {
	p := readQuery(r.URL.Query(), params{"component": list, "label": list})
	f := live.ComponentFilter{ComponentIDs: p.list("component")}
	p.add(parseLabels(p.list("label"), &f.Labels)...)
	if err := p.err(); err != nil {
		writeError(w, r, err)
		return
	}
	serveSSE(w, r, func(emit func(sseFrame) bool, end func(error)) error {
		return h.hub.OpenComponentStatus(r.Context(), h.log, h.rel, f, func(c live.ComponentStatus) bool {
			return emit(sseFrame{typ: "component.status", data: componentStatusJSON{EventID: c.EventID,
				Component: toComponentJSON(c.Component), Status: c.Status, At: formatTime(c.At)}})
		}, end)
	})
}

type componentStatusJSON struct {
	EventID   string        `json:"eventId"`
	Component componentJSON `json:"component"`
	Status    string        `json:"status"`
	At        string        `json:"at"`
}

func parseEventQuery(r *http.Request) (model.EventFilter, string, error) {
	p := readQuery(r.URL.Query(), params{"status": list, "severity": list, "service": list, "after": scalar})
	f := model.EventFilter{Services: p.list("service")}
	for _, s := range p.list("status") {
		f.Statuses = append(f.Statuses, model.Status(s))
	}
	for _, s := range p.list("severity") {
		f.Severities = append(f.Severities, model.Severity(s))
	}
	after := p.str("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after = id // the hub reads it; a bad one is refused there
	}
	p.add(f.Validate()...)
	if err := p.err(); err != nil {
		return f, "", err
	}
	return f, after, nil
}
