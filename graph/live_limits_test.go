package graph_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// TestWebSocketOrigin: browsers may open WebSockets from the same origin
// and from the configured ones only; clients that send no Origin are not
// browsers and are not affected.
func TestWebSocketOrigin(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{WSOrigins: []string{"dash.example.com"}}})
		key := s.Key(apitest.Tenant("origin"), rw...)
		for origin, allowed := range map[string]bool{
			"https://evil.example":      false,
			"https://dash.example.com":  true,
			s.URL:                       true, // same origin
			"":                          true, // not a browser
			"https://dash.example.com.": false,
		} {
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			c, ack, err := s.DialWSHeader(apitest.TransportWS, map[string]any{"X-API-Key": key}, &apitest.WSOptions{Header: h})
			switch {
			case allowed && (err != nil || ack.Type != "connection_ack"):
				t.Errorf("origin %q: %v %+v", origin, err, ack)
			case !allowed && (err == nil || !strings.Contains(err.Error(), "HTTP 403")):
				t.Errorf("origin %q: not refused (%v)", origin, err)
			}
			if c != nil {
				c.Close()
			}
		}
	})
}

// TestKeepAliveDropsDeadClients: a graphql-transport-ws client that does
// not answer pings is dropped; one that answers stays and still receives.
func TestKeepAliveDropsDeadClients(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{KeepAlive: 50 * time.Millisecond}})
		key := s.Key(apitest.Tenant("ka"), rw...)
		dead, ack, err := s.DialWSHeader(apitest.TransportWS, map[string]any{"X-API-Key": key}, &apitest.WSOptions{NoPong: true})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("dead client: %v %+v", err, ack)
		}
		defer dead.Close()
		alive, ack, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("live client: %v %+v", err, ack)
		}
		defer alive.Close()
		alive.Use(t).Subscribe("1", subQuery, nil)
		if _, closed := dead.Closed(10 * time.Second); !closed {
			t.Fatal("a client that answers no ping was not dropped")
		}
		s.WaitSubscriptions(1)
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "still here", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		if e := decodeEvent(t, alive.NextData("1", 5*time.Second)).IncidentChanged; e.Incident.Title != "still here" {
			t.Errorf("the answering client: %+v", e)
		}
	})
}

// TestSlowConsumerEnds: a subscriber that falls a buffer behind is ended
// with RateLimitExceeded (WebSocket: an error message; SSE: an error event
// and the end of the stream), instead of being buffered without bound.
func TestSlowConsumerEnds(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Live: live.Options{Buffer: 1}})
		tenant := apitest.Tenant("slow")
		key := s.Key(tenant, rw...)
		res, err := s.Client().Do(sseRequest(t, s, key, "/v1/incidents/events"))
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream: %v %v", err, res)
		}
		defer res.Body.Close()
		c, ack, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("init: %v %+v", err, ack)
		}
		defer c.Close()
		c.Use(t).Subscribe("1", subQuery, nil)
		s.WaitSubscriptions(2)
		// Fifty events of the tenant reach the hub at once (as one watcher
		// pass delivers them): a subscriber with room for one falls behind.
		var evs []*model.Event
		for i := range 50 {
			evs = append(evs, &model.Event{Pos: model.Position{Tx: 1 << 40, Seq: int64(i)}, TenantID: tenant, Type: model.EventIncidentCreated,
				Cursor: fmt.Sprint("evt_test", i), At: time.Now(),
				Incident: &model.Incident{ID: fmt.Sprint("inc_test", i), TenantID: tenant, Title: "burst", Severity: model.SeverityLow, Status: model.StatusOpen, Tags: []string{}}})
		}
		s.App.Hub.Publish(evs)
		s.WaitSubscriptions(0)
		// The WebSocket subscriber finds the end and its reason after what it
		// was sent before.
		for {
			m, err := c.Next(5 * time.Second)
			if err != nil {
				t.Fatalf("no error before the end: %v", err)
			}
			if m.Type == "error" {
				if m.ID != "1" || !strings.Contains(string(m.Payload), "RateLimitExceeded") {
					t.Errorf("slow consumer ended with %s %s", m.ID, m.Payload)
				}
				break
			}
		}
		// The stream ends with an error event naming the reason.
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sawError := false
		for sc.Scan() {
			if sc.Text() == "event: error" && sc.Scan() {
				sawError = strings.Contains(sc.Text(), "RateLimitExceeded")
			}
		}
		if !sawError {
			t.Error("the SSE stream ended without its error event")
		}
	})
}

// TestSubscriptionCapPerTenant: the per-tenant cap counts WebSocket and SSE
// subscriptions together, leaves other tenants alone, and frees a slot
// when one ends.
func TestSubscriptionCapPerTenant(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Live: live.Options{MaxPerTenant: 2}})
		tenant := apitest.Tenant("cap")
		key, other := s.Key(tenant, rw...), s.Key(apitest.Tenant("cap-other"), rw...)
		c, ack, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("init: %v %+v", err, ack)
		}
		defer c.Close()
		c.Use(t).Subscribe("1", subQuery, nil)
		s.WaitSubscriptions(1)
		res, err := s.Client().Do(sseRequest(t, s, key, "/v1/incidents/events"))
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream: %v %v", err, res)
		}
		s.WaitSubscriptions(2)
		// The third of the tenant is refused, on either door.
		c.Subscribe("2", subQuery, nil)
		if id, code := opError(t, c); id != "2" || code != "RateLimitExceeded" {
			t.Errorf("third subscription: %s %s", id, code)
		}
		if r := s.Do("GET", "/v1/incidents/events", key, nil); r.Status != 429 {
			t.Errorf("third stream: %d", r.Status)
		}
		// Another tenant is not affected.
		if r, err := s.Client().Do(sseRequest(t, s, other, "/v1/incidents/events")); err != nil || r.StatusCode != 200 {
			t.Errorf("another tenant's stream: %v %v", err, r)
		} else {
			r.Body.Close()
		}
		// Ending one frees its slot.
		res.Body.Close()
		s.WaitSubscriptions(1)
		c.Subscribe("3", subQuery, nil)
		s.WaitSubscriptions(2)
	})
}

// sseRequest builds a streaming GET of path with key.
func sseRequest(t *testing.T, s *apitest.Server, key, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Accept", "text/event-stream")
	return req
}
