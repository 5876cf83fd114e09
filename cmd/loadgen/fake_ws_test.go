package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeWS is the fake server's graphql-transport-ws side: just enough for
// loadgen's own tests, not a model of the real server.
type fakeWS struct {
	rejectFirst int  // connection_inits refused (close 4403) before any is accepted
	deaf        int  // the first this many subscribers are sent no events
	silent      bool // never acknowledge connection_init

	mu      sync.Mutex
	inits   int
	subs    map[*fakeSub]bool
	events  int
	pongs   int            // answers to our pings
	closes  map[string]int // how connections ended: close code or "complete"
	handled sync.WaitGroup // WebSocket handlers running
}

// startFake serves f until the test ends, then waits for its WebSocket
// handlers too: httptest's Close stops tracking hijacked connections.
func startFake(t *testing.T, f *fakeServer) *httptest.Server {
	srv := httptest.NewServer(f.handler())
	t.Cleanup(func() {
		srv.Close()
		f.ws.handled.Wait()
	})
	return srv
}

type fakeSub struct {
	c    *websocket.Conn
	id   string // of the subscribe message
	deaf bool
}

func (f *fakeServer) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{gqlSubprotocol}})
	if err != nil {
		return
	}
	ws := &f.ws
	defer c.CloseNow()
	ctx := context.Background()
	if c.Subprotocol() != gqlSubprotocol {
		c.Close(4406, "Subprotocol not acceptable")
		return
	}
	var m struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	read := func() bool {
		_, data, err := c.Read(ctx)
		if err != nil {
			ws.ended(websocket.CloseStatus(err).String())
			return false
		}
		m.ID, m.Type, m.Payload = "", "", nil
		return json.Unmarshal(data, &m) == nil
	}
	// A failed write means the client has gone; the next read ends the loop.
	write := func(v any) { _ = c.Write(ctx, websocket.MessageText, mustJSON(v)) }

	if !read() || m.Type != "connection_init" {
		c.Close(4400, "connection_init expected")
		return
	}
	var auth map[string]string
	if err := json.Unmarshal(m.Payload, &auth); err != nil {
		c.Close(4400, "connection_init payload: "+err.Error())
		return
	}
	ws.mu.Lock()
	ws.inits++
	reject := ws.inits <= ws.rejectFirst
	ws.mu.Unlock()
	if reject || auth["X-API-Key"] != "secret" {
		c.Close(4403, "Forbidden")
		return
	}
	if ws.silent {
		for read() {
		}
		return
	}
	write(map[string]string{"type": "connection_ack"})
	write(map[string]string{"type": "ping"}) // loadgen must answer
	var sub *fakeSub
	for read() {
		switch m.Type {
		case "pong":
			ws.mu.Lock()
			ws.pongs++
			ws.mu.Unlock()
		case "subscribe":
			if !strings.Contains(string(m.Payload), "incidentChanged") {
				write(map[string]any{"id": m.ID, "type": "error", "payload": []map[string]string{{"message": "unknown"}}})
				continue
			}
			ws.mu.Lock()
			if ws.subs == nil {
				ws.subs = map[*fakeSub]bool{}
			}
			sub = &fakeSub{c: c, id: m.ID, deaf: ws.deaf > 0}
			ws.deaf--
			ws.subs[sub] = true
			ws.mu.Unlock()
			write(map[string]string{"type": "ping"}) // and again once subscribed
		case "complete":
			ws.mu.Lock()
			delete(ws.subs, sub)
			ws.mu.Unlock()
			ws.ended("complete")
		}
	}
	ws.mu.Lock()
	delete(ws.subs, sub)
	ws.mu.Unlock()
}

func (ws *fakeWS) ended(how string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closes == nil {
		ws.closes = map[string]int{}
	}
	ws.closes[how]++
}

// publish sends the creation of an incident to every subscriber before the
// POST answers, as the real server does once the change commits.
func (f *fakeServer) publish(incidentID string) {
	ws := &f.ws
	ws.mu.Lock()
	ws.events++
	evID := ws.events
	var subs []*fakeSub
	for s := range ws.subs {
		if !s.deaf {
			subs = append(subs, s)
		}
	}
	ws.mu.Unlock()
	at := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	for _, s := range subs {
		msg := map[string]any{"id": s.id, "type": "next", "payload": map[string]any{"data": map[string]any{
			"incidentChanged": map[string]any{"id": strconv.Itoa(evID), "type": "CREATED", "at": at,
				"incident": map[string]string{"id": incidentID}}}}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.c.Write(ctx, websocket.MessageText, mustJSON(msg)) // a deaf or gone subscriber misses it: that is what is counted
		cancel()
	}
}
