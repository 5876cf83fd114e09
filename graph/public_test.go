package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

const publicDoc = `subscription Watch($t: ID!) { publicStatus(tenant: $t) { version components { displayName status labels { key value } } openIncidents { title status updates { displayName } } maintenance { id } } }`

type publicData struct {
	Data struct{ PublicStatus publicStatusData }
}

type publicStatusData = struct {
	Version    string
	Components []struct {
		DisplayName, Status string
	}
	OpenIncidents []struct {
		Title   string
		Updates []struct{ DisplayName string }
	}
}

func dialPublic(t *testing.T, s *apitest.Server, origin string) *apitest.WSClient {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, first, err := s.DialWSHeader(apitest.TransportWS, map[string]any{}, &apitest.WSOptions{Path: "/graphql/public", Header: h})
	if err != nil || first.Type != "connection_ack" {
		t.Fatalf("dial /graphql/public: %v %+v", err, first)
	}
	return c.Use(t)
}

// report sends a monitoring report over REST (a component's status changes).
func pubReport(t *testing.T, s *apitest.Server, key, name, impact string) {
	t.Helper()
	res := s.Do("POST", "/v1/component_status", key, map[string]any{"name": name, "impact": impact,
		"attributes": []map[string]string{{"name": "region", "value": "eu"}}})
	if res.Status != 201 {
		t.Fatalf("report: %d %s", res.Status, res.Body)
	}
}

// TestPublicSubscription: the anonymous publicStatus subscription at
// /graphql/public follows a published tenant's status (first the current
// state, then every change), shares one rendering among identical
// documents, never shows another tenant's changes, refuses every other
// operation and origins the tenant does not allow, and ends when the
// tenant unpublishes; the same subscription is open to credentials at
// /graphql, and the setStatusPublication mutation publishes.
func TestPublicSubscription(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten, other := apitest.Tenant("gpub"), apitest.Tenant("gpub-other")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		okey := s.Key(other, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for _, k := range []string{key, okey} {
			s.Do("POST", "/v1/components", k, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).Expect(t, 201)
		}
		vars := map[string]any{"t": ten}

		// Not published: NOT_FOUND, as for a tenant that does not exist.
		c := dialPublic(t, s, "")
		c.Subscribe("early", publicDoc, vars)
		if m, err := c.Next(10 * time.Second); err != nil || m.Type != "error" || !strings.Contains(string(m.Payload), "NotFound") {
			t.Fatalf("unpublished: %+v %v", m, err)
		}

		// Published through GraphQL: the origins follow the one rule.
		_, bad := s.GQL(key, `mutation { setStatusPublication(public: true, allowedOrigins: ["https://x.example/path"]) { public } }`, nil)
		if bad.Code() != "ValidationError" {
			t.Errorf("a bad origin: %+v", bad)
		}
		st, res := s.GQL(key, `mutation { setStatusPublication(public: true, allowedOrigins: ["HTTPS://Widget.Example"]) { public allowedOrigins } }`, nil)
		if st != 200 || !strings.Contains(string(res.Data), `"allowedOrigins":["https://widget.example"]`) {
			t.Fatalf("publish: %d %s %+v", st, res.Data, res.Errors)
		}
		s.Do("PUT", "/v1/status/publication", okey, map[string]any{"public": true}).Expect(t, 204)

		c.Subscribe("a", publicDoc, vars)
		twin := dialPublic(t, s, "https://widget.example")
		twin.Subscribe("b", publicDoc, vars)
		first := c.NextData("a", 10*time.Second)
		if got := twin.NextData("b", 10*time.Second); string(got) != string(first) {
			t.Errorf("one document, two renderings:\n%s\n%s", first, got)
		}
		var d publicData
		if err := json.Unmarshal(first, &d); err != nil || len(d.Data.PublicStatus.Components) != 1 || d.Data.PublicStatus.Components[0].Status != "operational" {
			t.Fatalf("first: %s %v", first, err)
		}
		if n := s.App.Public.Renderings(ten); n != 1 {
			t.Errorf("%d renderings for one document", n)
		}
		// The REST door names the same version.
		if etag := s.Do("GET", "/v1/public/"+ten+"/status", "", nil).Header.Get("ETag"); etag != `W/"`+d.Data.PublicStatus.Version+`"` {
			t.Errorf("version %s, ETag %s", d.Data.PublicStatus.Version, etag)
		}

		// Another tenant's change sends nothing here; this tenant's does.
		pubReport(t, s, okey, "API", "outage")
		pubReport(t, s, key, "API", "major")
		next := c.NextData("a", 10*time.Second)
		if err := json.Unmarshal(next, &d); err != nil || d.Data.PublicStatus.Components[0].Status != "major" ||
			len(d.Data.PublicStatus.OpenIncidents) != 1 || len(d.Data.PublicStatus.OpenIncidents[0].Updates) == 0 {
			t.Fatalf("after the report: %s", next)
		}
		if strings.Contains(string(next), "createdBy") {
			t.Errorf("who did what: %s", next)
		}
		twin.NextData("b", 10*time.Second)

		// Refused: other operations, other fields, origins not allowed.
		for name, doc := range map[string]string{
			"incidentChanged": `subscription { incidentChanged { id } }`,
			"a query":         `query { publicStatus(tenant: "` + ten + `") { version } }`,
			"two fields":      `subscription { publicStatus(tenant: "` + ten + `") { version } x: publicStatus(tenant: "` + ten + `") { version } }`,
			"not graphql":     `subscription {`,
			"private fields":  `subscription { publicStatus(tenant: "` + ten + `") { openIncidents { createdBy } } }`,
		} {
			c.Subscribe("bad", doc, nil)
			if m, err := c.Next(10 * time.Second); err != nil || m.Type != "error" || m.ID != "bad" {
				t.Errorf("%s: %+v %v", name, m, err)
			}
		}
		stranger := dialPublic(t, s, "https://evil.example")
		stranger.Subscribe("x", publicDoc, vars)
		if m, err := stranger.Next(10 * time.Second); err != nil || m.Type != "error" || !strings.Contains(string(m.Payload), "Forbidden") {
			t.Errorf("an origin the tenant does not allow: %+v %v", m, err)
		}

		// With a credential at /graphql: the same subscription.
		authed, ack, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": okey})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatal(err, ack)
		}
		authed.Use(t)
		authed.Subscribe("p", `subscription { publicStatus(tenant: "`+ten+`") { components { status } } }`, nil)
		if got := authed.NextData("p", 10*time.Second); !strings.Contains(string(got), `"status":"major"`) {
			t.Errorf("over /graphql: %s", got)
		}

		// Unpublishing ends them all.
		s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": false}).Expect(t, 204)
		for _, x := range []struct {
			c  *apitest.WSClient
			id string
		}{{c, "a"}, {twin, "b"}, {authed, "p"}} {
			for {
				m, err := x.c.Next(10 * time.Second)
				if err != nil {
					t.Fatalf("%s: %v", x.id, err)
				}
				if m.Type == "next" {
					continue
				}
				if m.ID != x.id || m.Type != "error" && m.Type != "complete" {
					t.Errorf("%s after unpublishing: %+v", x.id, m)
				}
				break
			}
		}
	})
}

// TestPublicDoorLimits: every subscription costs its address a request
// (the budget spent, the connection closes with 4429); undeclared
// variables are refused (they would make renderings without end); a
// connection holding no subscription is closed; aliases of publicStatus
// cost a whole summary each.
func TestPublicDoorLimits(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		cfg := apitest.Config{RateLimit: "6-M"}
		cfg.GraphQL.KeepAlive = 100 * time.Millisecond
		s := apitest.Start(t, b, cfg)
		ten := apitest.Tenant("plim")
		key := s.Key(ten, model.ScopeComponentsWrite)
		s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": true}).Expect(t, 204)
		c := dialPublic(t, s, "")                                           // 1
		c.Subscribe("junk", publicDoc, map[string]any{"t": ten, "junk": 1}) // 2
		if m, err := c.Next(10 * time.Second); err != nil || m.Type != "error" || !strings.Contains(string(m.Payload), "not declared") {
			t.Errorf("undeclared variable: %+v %v", m, err)
		}
		// Subscribe until the address's budget (6 a minute) is spent.
		refused := false
		for i := 0; i < 10 && !refused; i++ {
			id := fmt.Sprint("s", i)
			c.Subscribe(id, publicDoc, map[string]any{"t": ten})
			m, err := c.Next(10 * time.Second)
			if err != nil {
				t.Fatalf("subscription %d: %v", i, err)
			}
			if m.Type == "error" {
				if !strings.Contains(string(m.Payload), "RateLimitExceeded") {
					t.Errorf("refused for another reason: %s", m.Payload)
				}
				refused = true
			}
		}
		if !refused {
			t.Fatal("ten subscriptions within a budget of six")
		}
		if code, closed := c.Closed(10 * time.Second); !closed || code != 4429 {
			t.Errorf("over the budget the connection closes with 4429: %d %v", code, closed)
		}

		idleServer := apitest.Start(t, b, apitest.Config{GraphQL: cfg.GraphQL})
		idle := dialPublic(t, idleServer, "")
		if code, closed := idle.Closed(10 * time.Second); !closed || code != 4408 {
			t.Errorf("an idle connection: closed %v with %d", closed, code)
		}

		aliases := "{"
		for i := range 6 {
			aliases += fmt.Sprintf(` a%d: publicStatus(tenant: %q) { version }`, i, ten)
		}
		reader := idleServer.Key(apitest.Tenant("plim-reader"), model.ScopeRead)
		if _, r := idleServer.GQL(reader, aliases+" }", nil); r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" && !strings.Contains(fmt.Sprint(r.Errors), "complexity") {
			t.Errorf("six whole summaries in one query: %+v", r)
		}
	})
}
