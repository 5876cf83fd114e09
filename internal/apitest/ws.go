package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// The two GraphQL-over-WebSocket subprotocols.
const (
	TransportWS = "graphql-transport-ws" // the graphql-ws library's protocol
	LegacyWS    = "graphql-ws"           // subscriptions-transport-ws
)

// WSClient is a real WebSocket client speaking one of the two protocols.
type WSClient struct {
	t      testing.TB
	conn   *websocket.Conn
	proto  string
	msgs   chan WSMessage
	done   chan struct{}
	noPong bool
	// CloseCode is set when the server closed the connection.
	CloseCode websocket.StatusCode
}

// WSMessage is one server message.
type WSMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DialWS connects to /graphql with proto and sends connection_init with
// payload. It returns the client and the first server message (connection_ack
// on success). When the server refuses the connection, the client is still
// returned, with its CloseCode (graphql-transport-ws refuses with a close
// code and no message; the legacy protocol sends connection_error first):
// see Refused.
func (s *Server) DialWS(proto string, payload map[string]any) (*WSClient, WSMessage, error) {
	return s.DialWSHeader(proto, payload, nil)
}

// WSOptions tune DialWSHeader.
type WSOptions struct {
	// Header is sent with the handshake (an Origin, say).
	Header http.Header
	// NoPong leaves the server's pings unanswered (a dead client).
	NoPong bool
	// Path is the endpoint (default /graphql).
	Path string
}

// DialWSHeader is DialWS with options.
func (s *Server) DialWSHeader(proto string, payload map[string]any, opt *WSOptions) (*WSClient, WSMessage, error) {
	if opt == nil {
		opt = &WSOptions{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	path := opt.Path
	if path == "" {
		path = "/graphql"
	}
	url := "ws" + strings.TrimPrefix(s.URL, "http") + path
	h := opt.Header
	if h == nil {
		h = http.Header{}
	}
	conn, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{proto}, HTTPHeader: h})
	if err != nil {
		if res != nil {
			return nil, WSMessage{}, fmt.Errorf("handshake refused with HTTP %d: %w", res.StatusCode, err)
		}
		return nil, WSMessage{}, err
	}
	conn.SetReadLimit(1 << 22)
	c := &WSClient{t: s.t, conn: conn, proto: proto, msgs: make(chan WSMessage, 1024), done: make(chan struct{}), noPong: opt.NoPong}
	go c.read()
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, WSMessage{}, err
	}
	if err := c.Send(WSMessage{Type: "connection_init", Payload: raw}); err != nil {
		return c, WSMessage{}, err
	}
	m, err := c.Next(5 * time.Second)
	return c, m, err
}

// Refused dials, expects the server to refuse the connection_init, and
// returns the close code and the message sent before it (connection_error
// on the legacy protocol; none on graphql-transport-ws). It fails the test
// if the connection is acknowledged or stays open.
func (s *Server) Refused(proto string, payload map[string]any) (websocket.StatusCode, WSMessage) {
	s.t.Helper()
	c, first, err := s.DialWS(proto, payload)
	if c == nil {
		s.t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if first.Type == "connection_ack" {
		s.t.Fatalf("connection acknowledged, want it refused")
	}
	code, closed := c.Closed(5 * time.Second)
	if !closed {
		s.t.Fatalf("connection not closed (first message %s %s)", first.Type, first.Payload)
	}
	return code, first
}

func (c *WSClient) read() {
	defer close(c.done)
	defer close(c.msgs)
	for {
		var m WSMessage
		if err := wsjson.Read(context.Background(), c.conn, &m); err != nil {
			c.CloseCode = websocket.CloseStatus(err)
			return
		}
		switch m.Type {
		case "ping":
			if !c.noPong {
				// A pong that cannot be written means the connection is
				// going; the next read reports it (CloseCode).
				_ = c.Send(WSMessage{Type: "pong"})
			}
			continue
		case "ka", "pong":
			continue
		}
		c.msgs <- m
	}
}

// Send writes one message.
func (c *WSClient) Send(m WSMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return wsjson.Write(ctx, c.conn, m)
}

// Subscribe starts an operation with id.
func (c *WSClient) Subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	raw, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		c.t.Fatal(err)
	}
	typ := "subscribe"
	if c.proto == LegacyWS {
		typ = "start"
	}
	if err := c.Send(WSMessage{ID: id, Type: typ, Payload: raw}); err != nil {
		c.t.Fatalf("subscribe: %v", err)
	}
}

// Stop ends the operation id.
func (c *WSClient) Stop(id string) {
	typ := "complete"
	if c.proto == LegacyWS {
		typ = "stop"
	}
	if err := c.Send(WSMessage{ID: id, Type: typ}); err != nil {
		c.t.Fatalf("stop %s: %v", id, err)
	}
}

// Next returns the next server message, or an error after timeout or close.
func (c *WSClient) Next(timeout time.Duration) (WSMessage, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return WSMessage{}, fmt.Errorf("connection closed (code %d)", c.CloseCode)
		}
		return m, nil
	case <-time.After(timeout):
		return WSMessage{}, fmt.Errorf("no message within %s", timeout)
	}
}

// NextData returns the next data payload of operation id ("next"/"data"),
// failing the test on anything else.
func (c *WSClient) NextData(id string, timeout time.Duration) json.RawMessage {
	c.t.Helper()
	m, err := c.Next(timeout)
	if err != nil {
		c.t.Fatalf("waiting for data: %v", err)
	}
	if (m.Type != "next" && m.Type != "data") || m.ID != id {
		c.t.Fatalf("want data for %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	return m.Payload
}

// Proto is the client's subprotocol.
func (c *WSClient) Proto() string { return c.proto }

// Use binds the client to t (a subtest) and returns it.
func (c *WSClient) Use(t testing.TB) *WSClient {
	c.t = t
	return c
}

// Close closes the connection normally and waits for the reader.
func (c *WSClient) Close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "bye")
	<-c.done
}

// Closed waits for the server to close the connection and returns its code.
func (c *WSClient) Closed(timeout time.Duration) (websocket.StatusCode, bool) {
	select {
	case <-c.done:
		return c.CloseCode, true
	case <-time.After(timeout):
		return 0, false
	}
}

// GQL posts a GraphQL operation with key and decodes the response.
func (s *Server) GQL(key, query string, vars map[string]any) (int, GQLResponse) {
	s.t.Helper()
	res := s.Do("POST", "/graphql", key, map[string]any{"query": query, "variables": vars})
	var out GQLResponse
	if len(res.Body) == 0 {
		// An empty body would read as "no errors"; a GraphQL response
		// always has one.
		s.t.Fatalf("GraphQL response %d with no body", res.Status)
	}
	res.Decode(s.t, &out)
	return res.Status, out
}

// GQLResponse is a GraphQL response.
type GQLResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// Code returns the first error's extensions.code, or "".
func (r GQLResponse) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}
