package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
)

// TestSubscriptionOverPlainPOST: a subscription sent as a plain POST is
// refused at once with a coded error (it used to wait for the tenant's next
// event); over SSE and WebSocket it still streams.
func TestSubscriptionOverPlainPOST(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("post-sub"), rw...)
		body, _ := json.Marshal(map[string]any{"query": subQuery})
		client := &http.Client{Timeout: 5 * time.Second}
		for _, accept := range []string{"", "application/json", "application/graphql-response+json"} {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/graphql", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", key)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			started := time.Now()
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("Accept %q: %v (the request hung)", accept, err)
			}
			var out apitest.GQLResponse
			err = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK || out.Code() != "SUBSCRIPTION_NEEDS_STREAM" ||
				!strings.Contains(out.Errors[0].Message, "graphql-transport-ws") || !strings.Contains(out.Errors[0].Message, "text/event-stream") ||
				time.Since(started) > 2*time.Second {
				t.Errorf("Accept %q: %d %+v %v after %v", accept, res.StatusCode, out, err, time.Since(started))
			}
		}
		// Queries over POST are untouched.
		if _, r := s.GQL(key, `{ incidents { totalCount } }`, nil); len(r.Errors) > 0 {
			t.Errorf("query: %+v", r.Errors)
		}

		// WebSocket and SSE still stream.
		c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Subscribe("1", subQuery, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("SSE: %v %v", err, res)
		}
		defer res.Body.Close()
		s.WaitSubscriptions(2)
		rest(t, s, key, "POST", "/v1/incidents", map[string]any{"title": "streamed", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
		if m, err := c.Next(5 * time.Second); err != nil || !strings.Contains(string(m.Payload), "streamed") {
			t.Errorf("WebSocket: %+v %v", m, err)
		}
		got := make(chan bool, 1)
		go func() {
			buf := make([]byte, 4096)
			var seen strings.Builder
			for {
				n, err := res.Body.Read(buf)
				seen.Write(buf[:n])
				if strings.Contains(seen.String(), "streamed") {
					got <- true
					return
				}
				if err != nil {
					got <- false
					return
				}
			}
		}()
		select {
		case ok := <-got:
			if !ok {
				t.Error("SSE ended without the event")
			}
		case <-time.After(5 * time.Second):
			t.Error("no event over SSE")
		}
	})
}
