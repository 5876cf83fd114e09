package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
}

// stream serves GET /v1/incidents/events: the tenant's incident changes as
// server-sent events. Last-Event-ID (or ?after=) resumes after an event id.
func (h eventHandlers) stream(w http.ResponseWriter, r *http.Request) {
	f, after, err := parseEventQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	events := make(chan *model.Event, 16)
	var ended error
	err = h.hub.Open(ctx, h.log, f, after, func(e *model.Event) bool {
		select {
		case events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}, func(why error) {
		ended = why // read only after events is closed
		close(events)
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
		case e, ok := <-events:
			if !ok {
				if ended != nil {
					d := model.AsError(ended)
					b, _ := json.Marshal(map[string]string{"error": d.Code.WireName(), "message": d.Message})
					fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
					_ = rc.Flush()
				}
				return
			}
			b, err := json.Marshal(eventJSON{ID: strconv.FormatInt(e.ID, 10), Type: string(e.Type), At: formatTime(e.At), Incident: toIncidentJSON(e.Incident)})
			if err != nil {
				return
			}
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
			if rc.Flush() != nil {
				return
			}
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			if rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			for range events { // let the forwarder finish before the handler returns
			}
			return
		}
	}
}

var eventParams = []string{"status", "severity", "service", "after"}

func parseEventQuery(r *http.Request) (model.EventFilter, int64, error) {
	var f model.EventFilter
	var errs []model.FieldError
	after := int64(-1)
	for name, vs := range r.URL.Query() {
		v := strings.Join(vs, ",")
		if v == "" {
			continue
		}
		switch name {
		case "status":
			for s := range strings.SplitSeq(v, ",") {
				f.Statuses = append(f.Statuses, model.Status(strings.TrimSpace(s)))
			}
		case "severity":
			for s := range strings.SplitSeq(v, ",") {
				f.Severities = append(f.Severities, model.Severity(strings.TrimSpace(s)))
			}
		case "service":
			f.Services = append(f.Services, strings.Split(v, ",")...)
		case "after":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				errs = append(errs, model.FieldError{Field: "after", Message: "after must be an event id"})
			}
			after = n
		default:
			errs = append(errs, model.FieldError{Field: name, Message: "unknown query parameter " + name})
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, model.FieldError{Field: "Last-Event-ID", Message: "Last-Event-ID must be an event id"})
		}
		after = n
	}
	errs = append(errs, f.Validate()...)
	if len(errs) > 0 {
		return f, 0, model.Invalid("Invalid query parameters", sortDetails(errs)...)
	}
	return f, after, nil
}
