package graph_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

const subQuery = `subscription($f: IncidentEventFilter, $after: ID) { incidentChanged(filter: $f, after: $after) { id type at incident { id title severity status isDeleted } } }`

type event struct {
	IncidentChanged struct {
		ID       string
		Type     string
		At       string
		Incident struct {
			ID, Title, Severity, Status string
			IsDeleted                   bool
		}
	}
}

func decodeEvent(t *testing.T, raw json.RawMessage) event {
	t.Helper()
	var p struct {
		Data   event
		Errors []any
	}
	if err := json.Unmarshal(raw, &p); err != nil || len(p.Errors) > 0 {
		t.Fatalf("event %s: %v", raw, err)
	}
	return p.Data
}

// opError waits for an operation's failure: gqlgen reports resolver errors at
// subscription start as a payload with errors (then complete), transport
// errors as an "error" message. It returns the operation id and error code.
func opError(t *testing.T, c *apitest.WSClient) (id, code string) {
	t.Helper()
	for {
		m, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for an error: %v", err)
		}
		if m.Type == "complete" {
			continue
		}
		var errs []struct{ Extensions map[string]any }
		var wrapped struct {
			Errors []struct{ Extensions map[string]any }
		}
		if json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
			if json.Unmarshal(m.Payload, &wrapped) != nil || len(wrapped.Errors) == 0 {
				t.Fatalf("not an error: %s %s", m.Type, m.Payload)
			}
			errs = wrapped.Errors
		}
		code, _ := errs[0].Extensions["code"].(string)
		return m.ID, code
	}
}

func rest(t *testing.T, s *apitest.Server, key, method, path string, body any) map[string]any {
	t.Helper()
	res := s.Do(method, path, key, body)
	if res.Status >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, res.Status, res.Body)
	}
	if len(res.Body) == 0 {
		return nil
	}
	return res.Map(t)
}

func TestSubscriptionsOverWebSocket(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		for _, proto := range []string{apitest.TransportWS, apitest.LegacyWS} {
			t.Run(proto, func(t *testing.T) {
				s := apitest.Start(t, b, apitest.Config{})
				tenant := apitest.Tenant("ws")
				key := s.Key(tenant, rw...)
				otherKey := s.Key(apitest.Tenant("other"), rw...)

				c, ack, err := s.DialWS(proto, map[string]any{"X-API-Key": key})
				if err != nil || ack.Type != "connection_ack" {
					t.Fatalf("init: %v %+v", err, ack)
				}
				defer c.Close()
				c.Subscribe("all", subQuery, nil)
				c.Subscribe("crit", subQuery, map[string]any{"f": map[string]any{"severities": []string{"CRITICAL"}}})
				s.WaitSubscriptions(2)

				inc := rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "a", "severity": "critical", "occurredAt": "2024-01-01T00:00:00Z"})
				id := inc["id"].(string)
				rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "b", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
				rest(t, s, key, "PATCH", "/v1/incidents/"+id, map[string]any{"status": "resolved"})
				rest(t, s, key, "DELETE", "/v1/incidents/"+id, nil)
				rest(t, s, otherKey, "POST", "/v1/incidents", map[string]any{"title": "not yours", "severity": "critical", "occurredAt": "2024-01-01T00:00:00Z"})

				// "all" sees the four changes of this tenant, "crit" the three of the critical one.
				got := map[string][]string{}
				ids := map[string]bool{}
				for len(got["all"])+len(got["crit"]) < 7 {
					m, err := c.Next(5 * time.Second)
					if err != nil {
						t.Fatalf("after %v: %v", got, err)
					}
					if m.Type != "next" && m.Type != "data" {
						t.Fatalf("unexpected %s %s", m.Type, m.Payload)
					}
					e := decodeEvent(t, m.Payload).IncidentChanged
					got[m.ID] = append(got[m.ID], e.Type+":"+e.Incident.Title+":"+e.Incident.Status)
					// Ids are opaque and distinct; the order is checked below.
					if m.ID == "all" {
						if !strings.HasPrefix(e.ID, "evt_") || ids[e.ID] {
							t.Errorf("event id %q: not opaque or seen twice", e.ID)
						}
						ids[e.ID] = true
					}
				}
				wantAll := "CREATED:a:OPEN,CREATED:b:OPEN,UPDATED:a:RESOLVED,DELETED:a:RESOLVED"
				wantCrit := "CREATED:a:OPEN,UPDATED:a:RESOLVED,DELETED:a:RESOLVED"
				if strings.Join(got["all"], ",") != wantAll || strings.Join(got["crit"], ",") != wantCrit {
					t.Errorf("got %v", got)
				}
				// Nothing from the other tenant: the next event is this tenant's
				// own, written after the other tenant's.
				rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "mine", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
				if e := decodeEvent(t, c.NextData("all", 5*time.Second)).IncidentChanged; e.Incident.Title != "mine" {
					t.Errorf("after the other tenant's write: %+v", e)
				}
				// A stopped subscription gets nothing more; the other goes on.
				c.Stop("crit")
				s.WaitSubscriptions(1)
				rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "after stop", "severity": "critical", "occurredAt": "2024-01-01T00:00:00Z"})
				for {
					m, err := c.Next(5 * time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if m.ID == "crit" && (m.Type == "next" || m.Type == "data") {
						t.Fatalf("a stopped subscription received %s", m.Payload)
					}
					if m.ID == "all" {
						break
					}
				}
			})
		}
	})
}

func TestSubscriptionResume(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("resume"), rw...)
		var ids []string
		for i := range 5 {
			ids = append(ids, rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": fmt.Sprint(i), "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})["id"].(string))
		}
		// Find the id of the second event through a replay from the start.
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"Authorization": "Bearer " + key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Subscribe("1", subQuery, map[string]any{"after": "0"})
		var evIDs []string
		for range 5 {
			evIDs = append(evIDs, decodeEvent(t, c.NextData("1", 5*time.Second)).IncidentChanged.ID)
		}
		// Resume after the second: the three later ones, then live ones, nothing twice.
		c.Subscribe("2", subQuery, map[string]any{"after": evIDs[1]})
		for i := 2; i < 5; i++ {
			if e := decodeEvent(t, c.NextData("2", 5*time.Second)).IncidentChanged; e.ID != evIDs[i] || e.Incident.ID != ids[i] {
				t.Fatalf("replay %d: %+v", i, e)
			}
		}
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "live", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		seen := map[string]int{}
		for range 2 { // the live event reaches both subscriptions, once each
			m, err := c.Next(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			seen[m.ID]++
			if e := decodeEvent(t, m.Payload).IncidentChanged; e.Incident.Title != "live" {
				t.Errorf("%s: %+v", m.ID, e)
			}
		}
		if seen["1"] != 1 || seen["2"] != 1 {
			t.Errorf("live deliveries %v", seen)
		}
		// Nothing twice: the next event each subscription gets is the next one.
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "next", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		for range 2 {
			m, err := c.Next(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if e := decodeEvent(t, m.Payload).IncidentChanged; e.Incident.Title != "next" {
				t.Errorf("%s: %+v delivered again", m.ID, e)
			}
		}
		// A resume point older than the retention window is refused.
		if _, err := s.Store.PruneEvents(t.Context(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		c.Subscribe("3", subQuery, map[string]any{"after": evIDs[0]})
		if id, code := opError(t, c); id != "3" || code != "ValidationError" {
			t.Errorf("expired resume: %s %s", id, code)
		}
	})
}

func TestWebSocketAuthAndCaps(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{MaxSubscriptionsPerConn: 2}})
		tenant := apitest.Tenant("caps")
		key := s.Key(tenant, rw...)
		for name, payload := range map[string]map[string]any{
			"none": {}, "malformed": {"X-API-Key": "nope"}, "unknown": {"X-API-Key": "ik_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		} {
			// graphql-transport-ws refuses with the close code alone; the
			// legacy protocol sends connection_error first.
			for proto, first := range map[string]string{apitest.TransportWS: "", apitest.LegacyWS: "connection_error"} {
				if code, m := s.Refused(proto, payload); code != 4403 || m.Type != first {
					t.Errorf("%s/%s: closed %d after %q, want 4403 after %q", name, proto, code, m.Type, first)
				}
			}
		}
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Subscribe("1", subQuery, nil)
		c.Subscribe("2", subQuery, nil)
		c.Subscribe("3", subQuery, nil)
		rejected, code := opError(t, c)
		if code != "RateLimitExceeded" {
			t.Errorf("third subscription: %s %s", rejected, code)
		}
		// Free a slot, then a bad filter is a validation error.
		for _, id := range []string{"1", "2", "3"} {
			if id != rejected {
				c.Stop(id)
				break
			}
		}
		s.WaitSubscriptions(1)
		// The hub lets go of a stopped subscription a moment before the
		// connection frees its slot: until then a new one is refused.
		for attempt := 5; ; attempt++ {
			id := fmt.Sprint(attempt)
			c.Subscribe(id, `subscription { incidentChanged(filter: {services: [""]}) { id } }`, nil)
			got, code := opError(t, c)
			if code == "RateLimitExceeded" && got == id && attempt < 100 {
				continue
			}
			if got != id || code != "ValidationError" {
				t.Errorf("bad filter: %s %s", got, code)
			}
			break
		}
	})
}

func TestShutdownEndsSubscriptionsAndLeavesNoGoroutines(t *testing.T) {
	apitest.Each(t, testShutdown)
}

func testShutdown(t *testing.T, b apitest.Backend) {
	// Goroutines that exist now (other tests', the runtime's) are not leaks.
	ignore := goleak.IgnoreCurrent()
	t.Run("serve", func(t *testing.T) { // its cleanups stop the server before we look
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("sd"), rw...)
		var clients []*apitest.WSClient
		for i := range 20 {
			proto := []string{apitest.TransportWS, apitest.LegacyWS}[i%2]
			c, _, err := s.DialWS(proto, map[string]any{"X-API-Key": key})
			if err != nil {
				t.Fatal(err)
			}
			c.Use(t).Subscribe("1", subQuery, nil)
			clients = append(clients, c)
		}
		s.WaitSubscriptions(20)
		// Half the clients leave on their own.
		for _, c := range clients[:10] {
			c.Close()
		}
		s.WaitSubscriptions(10)
		// Shutdown tells the rest why their subscription ends, then closes
		// their sockets.
		s.Shutdown()
		for _, c := range clients[10:] {
			m, err := c.Next(5 * time.Second)
			if err != nil || m.Type != "error" || !strings.Contains(string(m.Payload), "ServiceUnavailable") {
				t.Errorf("shutdown: %v %s %s", err, m.Type, m.Payload)
			}
			if _, closed := c.Closed(5 * time.Second); !closed {
				t.Errorf("%s: the socket stayed open after shutdown", c.Proto())
			}
			c.Close()
		}
	})
	// Every server, connection and subscription goroutine is gone. (The rate
	// limiter's memory store stops its cleaner from a finalizer: collect
	// until it has run.)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if goleak.Find(ignore) == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	goleak.VerifyNone(t, ignore)
}

func TestServerSentEvents(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("sse"), rw...)
		first := rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "before", "severity": "high", "occurredAt": "2024-01-01T00:00:00Z"})

		open := func(path string, hdr ...string) (*apitest.SSE, func()) { return sseOpen(t, s, key, path, hdr...) }
		next := func(r *apitest.SSE) (string, string, map[string]any) { return sseNext(t, r) }
		r, stop := open("/v1/incidents/events?severity=high")
		defer stop()
		s.WaitSubscriptions(1)
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "low one", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		created := rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "high one", "severity": "high", "occurredAt": "2024-01-01T00:00:00Z"})
		// The stream may also carry the "before" event if its delivery was
		// still on its way when the stream opened; never the low one.
		for {
			id, typ, d := next(r)
			inc, _ := d["incident"].(map[string]any)
			if inc["id"] == first["id"] {
				continue
			}
			if typ != "incident.created" || inc["id"] != created["id"] || d["id"] != id {
				t.Errorf("sse event %s %s %v", id, typ, d)
			}
			break
		}
		// Last-Event-ID replays what came after it (the first incident's event is before it).
		r2, stop2 := open("/api/v1/incidents/events", "Last-Event-ID", "0")
		defer stop2()
		firstID, typ, d := next(r2)
		if inc, _ := d["incident"].(map[string]any); typ != "incident.created" || inc["id"] != first["id"] {
			t.Errorf("replay from 0: %s %v", typ, d)
		}
		// Resuming from an opaque event id: the next event is the low one.
		r3, stop3 := open("/v1/incidents/events", "Last-Event-ID", firstID)
		defer stop3()
		if _, _, d := next(r3); d["incident"].(map[string]any)["title"] != "low one" {
			t.Errorf("resume after %s: %v", firstID, d)
		}
		// Another tenant's client cannot resume from this tenant's ids.
		other := s.Key(apitest.Tenant("sse-other"), rw...)
		if res := s.Do("GET", "/v1/incidents/events?after="+firstID, other, nil); res.Status != 400 {
			t.Errorf("another tenant's event id: %d", res.Status)
		}
		for _, q := range []string{"?after=x", "?severity=urgent", "?bogus=1"} {
			res := s.Do("GET", "/v1/incidents/events"+q, key, nil)
			if res.Status != 400 {
				t.Errorf("%s: %d", q, res.Status)
			}
		}
		if res := s.Do("GET", "/v1/incidents/events", "", nil); res.Status != 401 {
			t.Errorf("no key: %d", res.Status)
		}
	})
}

func TestGraphQLOverSSE(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("gsse"), rw...)
		body, _ := json.Marshal(map[string]any{"query": subQuery})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%v %v", err, res)
		}
		defer res.Body.Close()
		s.WaitSubscriptions(1)
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "over sse", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		rd := bufio.NewReader(res.Body)
		got := make(chan string, 1)
		go func() {
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, "over sse") {
					got <- line
					return
				}
			}
		}()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("no event over GraphQL SSE")
		}
	})
}

// TestTwoInstances: a mutation on one server reaches a subscriber of another
// server on the same PostgreSQL database (LISTEN/NOTIFY).
func TestTwoInstances(t *testing.T) {
	pg := apitest.Postgres(t)
	a := apitest.Start(t, pg, apitest.Config{})
	b := apitest.Start(t, pg, apitest.Config{Store: apitest.OpenStore(t, pg, store.Options{})})
	tenant := apitest.Tenant("two")
	key := a.Key(tenant, rw...)
	c, _, err := a.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Subscribe("1", subQuery, nil)
	a.WaitSubscriptions(1)
	for i := range 3 {
		rest(t, b, key, "POST", "/v1/incidents", map[string]any{"title": fmt.Sprint("from b ", i), "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
	}
	var last string
	for i := range 3 {
		e := decodeEvent(t, c.NextData("1", 5*time.Second)).IncidentChanged
		if e.Incident.Title != fmt.Sprint("from b ", i) {
			t.Errorf("event %d: %+v", i, e)
		}
		last = e.Incident.ID
	}
	// An event too large for a NOTIFY payload travels by reference: the
	// other instance reads it by id, and its id is the one in the log.
	long := strings.Repeat("d", model.MaxDescriptionLen)
	rest(t, b, key, "PATCH", "/v1/incidents/"+last, map[string]any{"description": long, "title": "large"})
	e := decodeEvent(t, c.NextData("1", 5*time.Second)).IncidentChanged
	if e.Incident.Title != "large" || e.Incident.ID != last {
		t.Errorf("large event: %+v", e)
	}
	ctx := model.WithPrincipal(t.Context(), &model.Principal{TenantID: tenant, ActorID: "test", Scopes: []model.Scope{model.ScopeIncidentsRead}})
	evs, err := b.Store.Events().IncidentEvents(ctx, model.Position{}, 10)
	if err != nil || len(evs) != 4 || evs[3].Cursor != e.ID {
		t.Errorf("the log holds %d events (%v); the large one delivered as %s", len(evs), err, e.ID)
	}
}

// TestListenerLoss: when the database listener dies, subscriptions go on:
// the stream is read from the table, so nothing written meanwhile is lost,
// and the listener comes back.
func TestListenerLoss(t *testing.T) {
	pg := apitest.Postgres(t)
	s := apitest.Start(t, pg, apitest.Config{})
	key := s.Key(apitest.Tenant("gap"), rw...)
	c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Subscribe("1", subQuery, nil)
	s.WaitSubscriptions(1)
	rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "before", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
	lastID := decodeEvent(t, c.NextData("1", 5*time.Second)).IncidentChanged.ID

	kill := func() int {
		var killed int
		err := s.Store.DB().QueryRowContext(t.Context(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, s.Store.ListenerName()).Scan(&killed)
		if err != nil {
			t.Fatalf("terminate listener: %v", err)
		}
		return killed
	}
	if n := kill(); n != 1 {
		t.Fatalf("%d listeners terminated", n)
	}
	// Written while the listener is down: the subscription still gets it.
	rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "during", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
	if e := decodeEvent(t, c.NextData("1", 10*time.Second)).IncidentChanged; e.Incident.Title != "during" {
		t.Errorf("during the loss: %+v", e)
	}
	// The listener reconnects (wait for it: the test must not race the retry).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.Store.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, s.Store.ListenerName()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "after", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
	if e := decodeEvent(t, c.NextData("1", 10*time.Second)).IncidentChanged; e.Incident.Title != "after" {
		t.Errorf("live after reconnect: %+v", e)
	}
	// Resuming from the first still replays exactly what followed it.
	c.Subscribe("2", subQuery, map[string]any{"after": lastID})
	for _, want := range []string{"during", "after"} {
		if e := decodeEvent(t, c.NextData("2", 10*time.Second)).IncidentChanged; e.Incident.Title != want {
			t.Errorf("resumed: want %s, got %+v", want, e)
		}
	}
}

func TestWebSocketOperationsAreRateLimited(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{RateLimit: "4-M", GraphQL: graph.Config{MaxSubscriptionsPerConn: 100}})
		key := s.Key(apitest.Tenant("wsrl"), rw...)
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key}) // 1 of 4
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 4 { // 3 more fit, the 4th does not
			c.Subscribe(fmt.Sprint(i), subQuery, nil)
		}
		// Operations run concurrently, so any one of the four may be the one refused.
		if id, code := opError(t, c); code != "RateLimitExceeded" {
			t.Errorf("operation past the budget: %s %s", id, code)
		}
		// Failed handshakes spend the client's IP budget: four fit, the fifth
		// is refused for the rate, not the key.
		for i := range 4 {
			if code, _ := s.Refused(apitest.TransportWS, map[string]any{"X-API-Key": "nope"}); code != 4403 {
				t.Errorf("bad key %d: closed %d, want 4403", i, code)
			}
		}
		if code, _ := s.Refused(apitest.TransportWS, map[string]any{"X-API-Key": "nope"}); code != 4429 {
			t.Errorf("guessing keys over WebSocket: closed %d, want 4429", code)
		}
	})
}

// TestComponentStatusChanged: monitoring reports and incident changes reach
// a component status subscription as status changes, once each.
func TestComponentStatusChanged(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("cs"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for _, name := range []string{"API", "Web"} {
			rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": name, "labels": map[string]string{"tier": "core"}})
		}
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Subscribe("1", `subscription { componentStatusChanged(filter: {labels: [{key: "tier", value: "core"}]}) { status component { displayName } } }`, nil)
		s.WaitSubscriptions(1)
		next := func() string {
			var p struct {
				Data struct {
					ComponentStatusChanged struct {
						Status    string
						Component struct{ DisplayName string }
					}
				}
			}
			if err := json.Unmarshal(c.NextData("1", 5*time.Second), &p); err != nil {
				t.Fatal(err)
			}
			return p.Data.ComponentStatusChanged.Component.DisplayName + "=" + p.Data.ComponentStatusChanged.Status
		}
		inc := rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "API", "impact": "major"})
		if got := next(); got != "API=major" {
			t.Errorf("after the report: %s", got)
		}
		rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "API", "impact": "minor"}) // no change: nothing sent
		rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "Web", "impact": "major"})
		// The minor report changed nothing, so nothing was sent; the joined
		// incident's event carries both components, and only Web's status
		// changed.
		if got := next(); got != "Web=major" {
			t.Errorf("Web joining: %s", got)
		}
		rest(t, s, key, "PATCH", "/v1/incidents/"+inc["id"].(string), map[string]any{"status": "resolved"})
		seen := map[string]bool{next(): true, next(): true}
		if !seen["API=operational"] || !seen["Web=operational"] {
			t.Errorf("after resolving: %v", seen)
		}
	})
}

// sseOpen opens a server-sent event stream as key (apitest's client).
func sseOpen(t *testing.T, s *apitest.Server, key, path string, hdr ...string) (*apitest.SSE, func()) {
	t.Helper()
	st := s.OpenSSE(t, path, key, hdr...)
	return st, st.Close
}

// sseNext reads the next event, its data decoded.
func sseNext(t *testing.T, st *apitest.SSE) (id, typ string, data map[string]any) {
	t.Helper()
	e := st.Next(t, 5*time.Second)
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatalf("event data %s: %v", e.Data, err)
	}
	return e.ID, e.Type, data
}

// TestComponentEventsSSE: the REST twin of componentStatusChanged.
func TestComponentEventsSSE(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("csse"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "API", "labels": map[string]string{"tier": "core"}})
		rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "Docs", "labels": map[string]string{"tier": "edge"}})
		r, stop := sseOpen(t, s, key, "/v1/components/events?label=tier:core&component=&label=")
		defer stop()
		s.WaitSubscriptions(1)
		rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "Docs", "impact": "major"}) // filtered out
		rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "API", "impact": "major"})
		_, typ, d := sseNext(t, r)
		comp, _ := d["component"].(map[string]any)
		if typ != "component.status" || comp["displayName"] != "API" || d["status"] != "major" {
			t.Errorf("event: %s %v", typ, d)
		}
		for _, q := range []string{"?label=nocolon", "?bogus=1"} {
			if res := s.Do("GET", "/v1/components/events"+q, key, nil); res.Status != 400 {
				t.Errorf("%s: %d", q, res.Status)
			}
		}
		readOnly := s.Key(apitest.Tenant("csse"), model.ScopeIncidentsRead)
		if res := s.Do("GET", "/v1/components/events", readOnly, nil); res.Status != 403 {
			t.Errorf("without components:read: %d", res.Status)
		}
	})
}
