package graph_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// TestAuthMatrix asserts every credential case on every door: REST, GraphQL
// over HTTP, and GraphQL subscriptions over WebSocket, on both stores.
func TestAuthMatrix(t *testing.T) {
	apitest.Each(t, testAuthMatrix)
}

func testAuthMatrix(t *testing.T, b apitest.Backend) {
	is := apitest.NewIssuer(t)
	o, err := auth.NewOIDC(t.Context(), auth.OIDCConfig{Issuer: is.URL, Audience: "incidentd"}, model.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	s := apitest.Start(t, b, apitest.Config{OIDC: o})
	tenantA, tenantB := apitest.Tenant("a"), apitest.Tenant("b")
	ownerKey, ownerB := s.Key(tenantA, rw...), s.Key(tenantB, rw...)
	inc := rest(t, s, ownerKey, "POST", "/v1/incidents", map[string]any{"title": "a's", "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
	id := inc["id"].(string)
	past := time.Now().Add(-time.Minute)
	_, expiredKey, err := s.Store.APIKeys().IssueAPIKey(t.Context(), model.APIKeyIssue{TenantID: tenantA, Name: "old", Scopes: rw, ExpiresAt: &past})
	if err != nil {
		t.Fatal(err)
	}
	revoked := s.Key(tenantA, rw...)
	var revokedID string
	keys, err := s.Store.KeyAdmin().List(model.WithPrincipal(t.Context(), &model.Principal{TenantID: tenantA, ActorID: "t", Scopes: []model.Scope{model.ScopeAPIKeysAdmin}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(revoked, k.Prefix+"_") {
			revokedID = k.ID
		}
	}
	if revokedID == "" {
		t.Fatal("the key to revoke is not listed")
	}
	if _, err := s.Store.KeyAdmin().Revoke(model.WithPrincipal(t.Context(), &model.Principal{TenantID: tenantA, ActorID: "t", Scopes: []model.Scope{model.ScopeAPIKeysAdmin}}), revokedID); err != nil {
		t.Fatal(err)
	}
	type want int
	const (
		ok want = iota
		unauthorized
		forbidden
		hidden // 404 / null / no events: another tenant's incident
	)
	cases := []struct {
		name string
		cred string
		want want
	}{
		{"no credential", "", unauthorized},
		{"malformed", "not-a-key", unauthorized},
		{"unknown key", "ik_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", unauthorized},
		{"expired key", expiredKey, unauthorized},
		{"revoked key", revoked, unauthorized},
		{"expired token", is.Token(map[string]any{"tenant_id": tenantA, "exp": time.Now().Add(-time.Minute).Unix()}), unauthorized},
		{"other tenant key", s.Key(tenantB, rw...), hidden},
		{"other tenant token", is.Token(map[string]any{"tenant_id": tenantB}), hidden},
		{"key missing scope", s.Key(tenantA, model.ScopeComponentsRead), forbidden},
		{"token missing scope", is.Token(map[string]any{"tenant_id": tenantA, "scope": "components:read"}), forbidden},
		{"right key", s.Key(tenantA, model.ScopeIncidentsRead), ok},
		{"right token", is.Token(map[string]any{"tenant_id": tenantA, "scope": "incidents:read"}), ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.With(t)
			// REST
			res := s.Do("GET", "/v1/incidents/"+id, "", nil, "Authorization", bearer(c.cred))
			wantStatus := map[want]int{ok: 200, unauthorized: 401, forbidden: 403, hidden: 404}[c.want]
			if res.Status != wantStatus {
				t.Errorf("REST: %d, want %d", res.Status, wantStatus)
			}
			// GraphQL over HTTP
			res = s.Do("POST", "/graphql", "", map[string]any{"query": `query($id: ID!) { incident(id: $id) { id } }`, "variables": map[string]any{"id": id}},
				"Authorization", bearer(c.cred))
			var r apitest.GQLResponse
			res.Decode(t, &r)
			switch c.want {
			case unauthorized:
				if res.Status != http.StatusUnauthorized || r.Code() != "Unauthorized" {
					t.Errorf("GraphQL: %d %+v", res.Status, r.Errors)
				}
			case forbidden:
				if r.Code() != "Forbidden" {
					t.Errorf("GraphQL: %+v", r.Errors)
				}
			case hidden:
				if string(r.Data) != `{"incident":null}` {
					t.Errorf("GraphQL: %s %+v", r.Data, r.Errors)
				}
			case ok:
				if !strings.Contains(string(r.Data), id) {
					t.Errorf("GraphQL: %s %+v", r.Data, r.Errors)
				}
			}
			// WebSocket subscription
			payload := map[string]any{}
			if c.cred != "" {
				payload["Authorization"] = bearer(c.cred)
			}
			if c.want == unauthorized {
				// graphql-transport-ws refuses with the close code alone.
				if code, first := s.Refused(apitest.TransportWS, payload); code != 4403 || first.Type != "" {
					t.Errorf("WebSocket: closed %d after %q, want 4403", code, first.Type)
				}
				if code, first := s.Refused(apitest.LegacyWS, payload); code != 4403 || first.Type != "connection_error" {
					t.Errorf("legacy WebSocket: closed %d after %q, want connection_error and 4403", code, first.Type)
				}
				return
			}
			ws, ack, err := s.DialWS(apitest.TransportWS, payload)
			if err != nil || ack.Type != "connection_ack" {
				t.Fatalf("WebSocket init: %v %+v", err, ack)
			}
			ws.Use(t)
			defer func() { ws.Close(); s.WaitSubscriptions(0) }()
			ws.Subscribe("1", subQuery, nil)
			if c.want == forbidden {
				if _, code := opError(t, ws); code != "Forbidden" {
					t.Errorf("WebSocket: %s", code)
				}
				return
			}
			s.WaitSubscriptions(1)
			rest(t, s, ownerKey, "PATCH", "/v1/incidents/"+id, map[string]any{"description": c.name})
			if c.want == hidden {
				// Nothing of tenant A reaches B: the next event B receives is
				// B's own, written after A's.
				mine := rest(t, s, ownerB, "POST", "/v1/incidents", map[string]any{"title": "b's " + c.name, "severity": "low", "occurredAt": "2024-01-01T00:00:00Z"})
				if e := decodeEvent(t, ws.NextData("1", 5*time.Second)).IncidentChanged; e.Incident.ID != mine["id"] {
					t.Errorf("another tenant's event reached the subscriber: %+v", e)
				}
				return
			}
			if e := decodeEvent(t, ws.NextData("1", 5*time.Second)).IncidentChanged; e.Incident.ID != id {
				t.Errorf("WebSocket event %+v", e)
			}
		})
	}
}

func bearer(cred string) string {
	if cred == "" {
		return ""
	}
	return "Bearer " + cred
}

// TestRevokedKeyOnOpenSocket: a key revoked after the handshake cannot start
// operations on its open WebSocket, and its open subscriptions end: revoked
// on the socket's own instance (both stores), and on another instance of the
// same PostgreSQL database, from which only NOTIFY and the watcher carry it.
func TestRevokedKeyOnOpenSocket(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		t.Run("same instance", func(t *testing.T) {
			testRevokedKeyOnOpenSocket(t, b, func(s *apitest.Server) *store.Store { return s.Store })
		})
		if b.Name == "postgres" {
			t.Run("another instance", func(t *testing.T) {
				testRevokedKeyOnOpenSocket(t, b, func(*apitest.Server) *store.Store { return apitest.OpenStore(t, b, store.Options{}) })
			})
		}
	})
}

func testRevokedKeyOnOpenSocket(t *testing.T, b apitest.Backend, revoker func(*apitest.Server) *store.Store) {
	s := apitest.Start(t, b, apitest.Config{KeyCacheTTL: time.Hour})
	tenant := apitest.Tenant("sock")
	admin := &model.Principal{TenantID: tenant, ActorID: "admin", Scopes: []model.Scope{model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead}}
	key, secret, err := s.Store.KeyAdmin().Create(model.WithPrincipal(t.Context(), admin), model.APIKeyCreate{Name: "w", Scopes: []model.Scope{model.ScopeIncidentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": secret})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Use(t).Subscribe("open", subQuery, nil)
	s.WaitSubscriptions(1) // open before the revocation, or the test proves nothing
	if _, err := revoker(s).KeyAdmin().Revoke(model.WithPrincipal(t.Context(), admin), key.ID); err != nil {
		t.Fatal(err)
	}
	// The subscription opened before the revocation ends, with the reason.
	if id, code := opError(t, c); id != "open" || code != "Unauthorized" {
		t.Errorf("open subscription after revocation: %s %s", id, code)
	}
	// New operations on the socket are refused.
	c.Subscribe("1", subQuery, nil)
	if _, code := opError(t, c); code != "Unauthorized" {
		t.Errorf("operation with a revoked key: %s", code)
	}
}
