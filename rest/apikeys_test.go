package rest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

type apiKey struct {
	ID, Prefix, Name, Tier, CreatedBy, Key string
	Scopes                                 []string
	ExpiresAt, LastUsedAt, RevokedAt       *string
}

// eventually retries check until it holds or 5 s pass: for what reaches
// another instance (NOTIFY) or is recorded in the background.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAPIKeyManagement(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		// A key cache far longer than the test: only eviction can make revocation immediate.
		s := apitest.Start(t, b, apitest.Config{KeyCacheTTL: time.Hour})
		tenant := apitest.Tenant("keys")
		admin := s.Key(tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		// A key made over the API runs in its creator's tier.
		wantProblem(t, s.Do("POST", "/v1/api-keys", admin, map[string]any{"name": "ci", "scopes": []string{"incidents:read"}, "tier": "premium"}), 403, "Forbidden")
		res := s.Do("POST", "/v1/api-keys", admin, map[string]any{"name": "ci", "scopes": []string{"incidents:read"}})
		var k apiKey
		res.JSON(t, &k)
		if res.Status != 201 || !strings.HasPrefix(k.Key, k.Prefix+"_") || k.Tier != "default" || !strings.HasPrefix(k.ID, "key_") {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		// The secret works, and is never shown again.
		if r := s.Do("GET", "/v1/incidents", k.Key, nil); r.Status != 200 {
			t.Errorf("new key: %d", r.Status)
		}
		got := s.Do("GET", "/v1/api-keys/"+k.ID, admin, nil)
		if got.Status != 200 || strings.Contains(string(got.Body), k.Key) || strings.Contains(string(got.Body), `"key"`) {
			t.Errorf("get shows the secret: %s", got.Body)
		}
		var list struct{ Data []apiKey }
		s.Do("GET", "/v1/api-keys", admin, nil).JSON(t, &list)
		if len(list.Data) != 2 || list.Data[0].ID != k.ID || list.Data[0].CreatedBy != "user_"+tenant {
			t.Errorf("list: %+v", list.Data)
		}
		// A key cannot carry scopes its creator lacks; bad input lists every field.
		p := wantProblem(t, s.Do("POST", "/v1/api-keys", admin, map[string]any{"name": "", "scopes": []string{"incidents:write", "bogus"}, "expiresAt": "2001-01-01T00:00:00Z"}), 400, "ValidationError")
		if len(p.Details) != 4 {
			t.Errorf("details %+v", p.Details)
		}
		// Without apikeys:admin: 403 everywhere; read/write aliases do not grant it.
		for _, key := range []string{k.Key, s.Key(tenant, model.ScopeWrite)} {
			wantProblem(t, s.Do("GET", "/v1/api-keys", key, nil), 403, "Forbidden")
			wantProblem(t, s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "x", "scopes": []string{"read"}}), 403, "Forbidden")
			wantProblem(t, s.Do("DELETE", "/v1/api-keys/"+k.ID, key, nil), 403, "Forbidden")
		}
		// Another tenant's admin sees nothing.
		other := s.Key(apitest.Tenant("other"), model.ScopeAPIKeysAdmin)
		wantProblem(t, s.Do("GET", "/v1/api-keys/"+k.ID, other, nil), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", "/v1/api-keys/"+k.ID, other, nil), 404, "NotFound")

		// Rotation cannot grant more than the rotating credential holds.
		strong := s.Key(tenant, model.ScopeWrite, model.ScopeAuditRead)
		var strongID string
		for _, kk := range func() []apiKey {
			var l struct{ Data []apiKey }
			s.Do("GET", "/v1/api-keys", admin, nil).JSON(t, &l)
			return l.Data
		}() {
			if strings.HasPrefix(strong, kk.Prefix+"_") {
				strongID = kk.ID
			}
		}
		wantProblem(t, s.Do("POST", "/v1/api-keys/"+strongID+"/rotate", admin, nil), 403, "Forbidden")
		// Nor another tier (tiers are names, not ranks: "default", 200 a
		// minute, outranks "free", 100 an hour), nor another actor's identity.
		issue := func(tier, actor string, scopes ...model.Scope) (id, secret string) {
			key, secret, err := s.Store.APIKeys().IssueAPIKey(t.Context(), model.APIKeyIssue{TenantID: tenant, Name: "tiered", Scopes: scopes, Tier: tier, ActorID: actor})
			if err != nil {
				t.Fatal(err)
			}
			return key.ID, secret
		}
		_, freeAdmin := issue("free", "user_"+tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		defaultKey, _ := issue("default", "user_"+tenant, model.ScopeIncidentsRead)
		wantProblem(t, s.Do("POST", "/v1/api-keys/"+defaultKey+"/rotate", freeAdmin, nil), 403, "Forbidden")
		othersKey, _ := issue("default", "someone-else", model.ScopeIncidentsRead)
		wantProblem(t, s.Do("POST", "/v1/api-keys/"+othersKey+"/rotate", admin, nil), 403, "Forbidden")
		freeKey, _ := issue("free", "user_"+tenant, model.ScopeIncidentsRead)
		var freeNext apiKey
		s.Do("POST", "/v1/api-keys/"+freeKey+"/rotate", freeAdmin, nil).Expect(t, 201).JSON(t, &freeNext)
		if freeNext.Tier != "free" || freeNext.CreatedBy != "user_"+tenant {
			t.Errorf("rotation within the tier and actor: %+v", freeNext)
		}
		// Rotation: the successor works, the old key too during the overlap.
		res = s.Do("POST", "/v1/api-keys/"+k.ID+"/rotate", admin, map[string]any{"overlapSeconds": 3600})
		var next apiKey
		res.JSON(t, &next)
		if res.Status != 201 || next.Key == "" || next.ID == k.ID || next.Tier != "default" || strings.Join(next.Scopes, ",") != "incidents:read" {
			t.Fatalf("rotate: %d %s", res.Status, res.Body)
		}
		for _, key := range []string{k.Key, next.Key} {
			if r := s.Do("GET", "/v1/incidents", key, nil); r.Status != 200 {
				t.Errorf("during overlap: %d", r.Status)
			}
		}
		var old apiKey
		s.Do("GET", "/v1/api-keys/"+k.ID, admin, nil).JSON(t, &old)
		if old.ExpiresAt == nil {
			t.Errorf("rotated key has no expiry")
		}
		// Rotating with no overlap ends the old key at once.
		res = s.Do("POST", "/v1/api-keys/"+next.ID+"/rotate", admin, map[string]any{"overlapSeconds": 0}).Expect(t, 201)
		var third apiKey
		res.JSON(t, &third)
		// On the instance that rotated it: refused by the very next request.
		if r := s.Do("GET", "/v1/incidents", next.Key, nil); r.Status != 401 {
			t.Errorf("rotated key right after the rotation: %d", r.Status)
		}
		// Revocation is immediate, despite the key cache, and idempotent.
		if r := s.Do("GET", "/v1/incidents", third.Key, nil); r.Status != 200 {
			t.Fatalf("third key: %d", r.Status)
		}
		if r := s.Do("DELETE", "/v1/api-keys/"+third.ID, admin, nil); r.Status != 204 {
			t.Fatalf("revoke: %d", r.Status)
		}
		if r := s.Do("GET", "/v1/incidents", third.Key, nil); r.Status != 401 {
			t.Errorf("revoked key right after the revocation: %d", r.Status)
		}
		if r := s.Do("DELETE", "/v1/api-keys/"+third.ID, admin, nil); r.Status != 204 {
			t.Errorf("second revoke: %d", r.Status)
		}
		wantProblem(t, s.Do("POST", "/v1/api-keys/"+third.ID+"/rotate", admin, nil), 422, "BusinessRuleViolation")
		wantProblem(t, s.Do("POST", "/v1/api-keys/"+third.ID+"/rotate", admin, map[string]any{"overlapSeconds": -1}), 400, "ValidationError")
		// Last use is recorded.
		eventually(t, "lastUsedAt recorded", func() bool {
			var got apiKey
			s.Do("GET", "/v1/api-keys/"+k.ID, admin, nil).JSON(t, &got)
			return got.LastUsedAt != nil
		})
	})
}

// TestRevocationReachesEveryInstance: revoked on one server, refused at once
// by another on the same database, whatever its key cache holds.
func TestRevocationReachesEveryInstance(t *testing.T) {
	pg := apitest.Postgres(t)
	a := apitest.Start(t, pg, apitest.Config{KeyCacheTTL: time.Hour})
	bSrv := apitest.Start(t, pg, apitest.Config{KeyCacheTTL: time.Hour, Store: apitest.OpenStore(t, pg, store.Options{})})
	tenant := apitest.Tenant("rev")
	admin := a.Key(tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
	var k apiKey
	a.Do("POST", "/v1/api-keys", admin, map[string]any{"name": "x", "scopes": []string{"incidents:read"}}).JSON(t, &k)
	if r := bSrv.Do("GET", "/v1/incidents", k.Key, nil); r.Status != 200 { // now cached on b
		t.Fatalf("before: %d", r.Status)
	}
	a.Do("DELETE", "/v1/api-keys/"+k.ID, admin, nil).Expect(t, 204)
	eventually(t, "b refuses the revoked key", func() bool { return bSrv.Do("GET", "/v1/incidents", k.Key, nil).Status == 401 })
}
