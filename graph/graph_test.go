package graph_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/webhook"
)

var rw = []model.Scope{model.ScopeIncidentsRead, model.ScopeIncidentsWrite}

const fields = `id title description severity status service tags occurredAt resolvedAt createdAt updatedAt createdBy updatedBy isDeleted`

type gqlIncident struct {
	ID, Title, Severity, Status string
	Service                     *string
	Tags                        []string
	ResolvedAt                  *string
	IsDeleted                   bool
}

type conn struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage, HasPreviousPage bool
		StartCursor, EndCursor       *string
	}
	Nodes []gqlIncident
	Edges []struct {
		Cursor string
		Node   gqlIncident
	}
}

func data[T any](t *testing.T, r apitest.GQLResponse, field string) T {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(m[field], &out); err != nil {
		t.Fatalf("%s: %v in %s", field, err, r.Data)
	}
	return out
}

func createGQL(t *testing.T, s *apitest.Server, key string, in map[string]any) gqlIncident {
	t.Helper()
	_, r := s.GQL(key, `mutation($in: CreateIncidentInput!) { createIncident(input: $in) { `+fields+` } }`, map[string]any{"in": in})
	return data[gqlIncident](t, r, "createIncident")
}

func TestQueriesAndMutations(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("g")
		key := s.Key(tenant, rw...)
		inc := createGQL(t, s, key, map[string]any{"title": "DB down", "severity": "HIGH", "occurredAt": "2024-01-15T16:30:00+02:00", "service": "db", "tags": []string{"a"}})
		if inc.Status != "OPEN" || inc.Severity != "HIGH" || !strings.HasPrefix(inc.ID, "inc_") {
			t.Fatalf("created %+v", inc)
		}
		// The REST door sees the same incident.
		res := s.Do("GET", "/v1/incidents/"+inc.ID, key, nil)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"severity":"high"`) {
			t.Errorf("REST: %d %s", res.Status, res.Body)
		}
		_, r := s.GQL(key, `query($id: ID!) { incident(id: $id) { `+fields+` } }`, map[string]any{"id": inc.ID})
		if got := data[gqlIncident](t, r, "incident"); got.Title != "DB down" {
			t.Errorf("query %+v", got)
		}
		// Partial update: null clears, absent keeps.
		_, r = s.GQL(key, `mutation($id: ID!) { updateIncident(id: $id, input: {status: RESOLVED, service: null}) { `+fields+` } }`, map[string]any{"id": inc.ID})
		upd := data[gqlIncident](t, r, "updateIncident")
		if upd.Status != "RESOLVED" || upd.ResolvedAt == nil || upd.Service != nil || upd.Title != "DB down" || len(upd.Tags) != 1 {
			t.Errorf("update %+v", upd)
		}
		// Validation errors carry REST's codes and field details.
		_, r = s.GQL(key, `mutation { createIncident(input: {title: "", severity: LOW, occurredAt: "2024-01-15T14:30:00Z", tags: [""]}) { id } }`, nil)
		if r.Code() != "ValidationError" {
			t.Fatalf("want ValidationError, got %+v", r.Errors)
		}
		details, _ := json.Marshal(r.Errors[0].Extensions["details"])
		for _, want := range []string{`"field":"title"`, `"field":"tags[0]"`, "title must be between 1 and 200 characters"} {
			if !strings.Contains(string(details), want) {
				t.Errorf("details %s lack %s", details, want)
			}
		}
		_, r = s.GQL(key, `mutation($id: ID!) { updateIncident(id: $id, input: {resolvedAt: "2000-01-01T00:00:00Z"}) { id } }`, map[string]any{"id": inc.ID})
		if r.Code() != "BusinessRuleViolation" {
			t.Errorf("want BusinessRuleViolation, got %+v", r.Errors)
		}
		// A value the schema refuses is a validation error that points at it.
		_, r = s.GQL(key, `mutation { createIncident(input: {title: "x", severity: URGENT, occurredAt: "2024-01-15T14:30:00Z"}) { id } }`, nil)
		if r.Code() != "GRAPHQL_VALIDATION_FAILED" || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, `"URGENT"`) {
			t.Errorf("bad enum: %+v", r.Errors)
		}
		_, r = s.GQL(key, `mutation { createIncident(input: {title: "x", severity: LOW, occurredAt: "yesterday"}) { id } }`, nil)
		if r.Code() != "ValidationError" || len(r.Errors) != 1 || fmt.Sprint(r.Errors[0].Path) != "[createIncident input occurredAt]" {
			t.Errorf("bad time: %+v", r.Errors)
		}
		// Delete, then the incident is null and updates are NotFound.
		_, r = s.GQL(key, `mutation($id: ID!) { deleteIncident(id: $id) { id } }`, map[string]any{"id": inc.ID})
		data[map[string]any](t, r, "deleteIncident")
		_, r = s.GQL(key, `query($id: ID!) { incident(id: $id) { id } }`, map[string]any{"id": inc.ID})
		if string(r.Data) != `{"incident":null}` {
			t.Errorf("deleted incident: %s", r.Data)
		}
		_, r = s.GQL(key, `mutation($id: ID!) { deleteIncident(id: $id) { id } }`, map[string]any{"id": inc.ID})
		if r.Code() != "NotFound" {
			t.Errorf("second delete: %+v", r.Errors)
		}
	})
}

func TestConnections(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("c"), rw...)
		for i := range 13 {
			createGQL(t, s, key, map[string]any{"title": fmt.Sprintf("t%02d", i), "severity": []string{"LOW", "HIGH", "CRITICAL"}[i%3],
				"occurredAt": time.Date(2024, 1, 1, i, 0, 0, 0, time.UTC).Format(time.RFC3339)})
		}
		q := `query($first: Int, $after: String, $last: Int, $before: String, $limit: Int, $offset: Int, $filter: IncidentFilter, $order: IncidentOrder) {
			incidents(first: $first, after: $after, last: $last, before: $before, limit: $limit, offset: $offset, filter: $filter, orderBy: $order) {
				totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id title } edges { cursor node { id title } } } }`
		page := func(vars map[string]any) conn {
			t.Helper()
			_, r := s.GQL(key, q, vars)
			return data[conn](t, r, "incidents")
		}
		titles := func(c conn) string {
			var out []string
			for _, n := range c.Nodes {
				out = append(out, n.Title)
			}
			return strings.Join(out, ",")
		}
		order := map[string]any{"field": "TITLE", "direction": "ASC"}
		// Forward through the whole list.
		var all []string
		vars := map[string]any{"first": 5, "order": order}
		for {
			c := page(vars)
			if c.TotalCount != 13 {
				t.Fatalf("totalCount %d", c.TotalCount)
			}
			all = append(all, titles(c))
			if !c.PageInfo.HasNextPage {
				break
			}
			vars = map[string]any{"first": 5, "after": *c.PageInfo.EndCursor, "order": order}
		}
		if strings.Join(all, ",") != "t00,t01,t02,t03,t04,t05,t06,t07,t08,t09,t10,t11,t12" {
			t.Errorf("forward walk %v", all)
		}
		// Backward: the last 5, then the 5 before them.
		c := page(map[string]any{"last": 5, "order": order})
		if titles(c) != "t08,t09,t10,t11,t12" || !c.PageInfo.HasPreviousPage {
			t.Errorf("last 5: %s %+v", titles(c), c.PageInfo)
		}
		c = page(map[string]any{"last": 5, "before": *c.PageInfo.StartCursor, "order": order})
		if titles(c) != "t03,t04,t05,t06,t07" || !c.PageInfo.HasPreviousPage || !c.PageInfo.HasNextPage {
			t.Errorf("5 before: %s %+v", titles(c), c.PageInfo)
		}
		// Edge cursors continue the walk too.
		c2 := page(map[string]any{"first": 2, "after": c.Edges[0].Cursor, "order": order})
		if titles(c2) != "t04,t05" {
			t.Errorf("after an edge cursor: %s", titles(c2))
		}
		// limit/offset like REST, and the same filters as REST.
		c = page(map[string]any{"limit": 3, "offset": 2, "order": order})
		if titles(c) != "t02,t03,t04" {
			t.Errorf("limit/offset: %s", titles(c))
		}
		c = page(map[string]any{"filter": map[string]any{"severities": []string{"CRITICAL"}, "keyword": "T1"}, "order": order})
		if titles(c) != "t11" || c.TotalCount != 1 {
			t.Errorf("filter: %s %d", titles(c), c.TotalCount)
		}
		var rest struct {
			Data       []struct{ Title string }
			Pagination struct{ TotalCount int }
		}
		s.Do("GET", "/v1/incidents?severity=critical&keyword=T1&sort=title:asc", key, nil).JSON(t, &rest)
		if len(rest.Data) != 1 || rest.Data[0].Title != "t11" || rest.Pagination.TotalCount != 1 {
			t.Errorf("REST twin disagrees: %+v", rest)
		}
		// Bad arguments are validation errors.
		for _, v := range []map[string]any{
			{"first": 0}, {"first": 101}, {"first": 2, "last": 2}, {"first": 2, "offset": 1},
			{"after": "garbage"}, {"first": 1, "after": *c2.PageInfo.EndCursor}, // cursor of another sort
			{"first": 2, "before": c.Edges[0].Cursor, "order": order}, {"last": 2, "after": c.Edges[0].Cursor, "order": order},
		} {
			_, r := s.GQL(key, q, v)
			if r.Code() != "ValidationError" {
				t.Errorf("%v: %+v", v, r.Errors)
			}
		}
	})
}

// statements is how many statements query costs. The counter is the store's,
// so background work (a key's last-used touch, the event poller, the webhook
// fan-out of the writes just made) can land in a window: it waits for that
// work to settle first, and the least of a few runs is the operation's own
// cost. Servers it measures poll for webhooks rarely (quiet), as only the
// watcher's once-a-second poll is then left to land in a run.
// quiet is a webhook engine that looks for due deliveries only when woken
// by writes, for tests counting a query's statements.
var quiet = webhook.Options{Poll: time.Hour}

func statements(t *testing.T, s *apitest.Server, key, query string) (int64, apitest.GQLResponse) {
	t.Helper()
	s.GQL(key, query, nil) // warm the key cache
	for last, deadline := s.Store.Statements(), time.Now().Add(5*time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := s.Store.Statements()
		if now == last {
			break
		}
		last = now
	}
	least := int64(math.MaxInt64)
	var r apitest.GQLResponse
	for range 5 {
		before := s.Store.Statements()
		_, r = s.GQL(key, query, nil)
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		least = min(least, s.Store.Statements()-before)
	}
	return least, r
}

// TestStatementsBounded: a list costs the same number of statements whatever
// its size and selection.
func TestStatementsBounded(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Webhooks: quiet})
		key := s.Key(apitest.Tenant("n"), rw...)
		for i := range 60 {
			createGQL(t, s, key, map[string]any{"title": fmt.Sprint(i), "severity": "LOW", "occurredAt": "2024-01-01T00:00:00Z"})
		}
		cost := func(q string) int64 {
			n, _ := statements(t, s, key, q)
			return n
		}
		small := cost(`{ incidents(first: 2) { totalCount nodes { id } } }`)
		large := cost(`{ incidents(first: 50, filter: {keyword: "1"}) { totalCount edges { cursor node { ` + fields + ` } } nodes { ` + fields + ` } } }`)
		none := cost(`{ incidents(first: 50) { nodes { id } } }`)
		if small > 3 || large > 3 || none > 1 {
			t.Errorf("statements: small %d, large %d, without totalCount %d", small, large, none)
		}
	})
}

func TestLimitsAndAuth(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{DepthLimit: 3, ComplexityLimit: 1000}})
		tenantA := apitest.Tenant("a")
		key := s.Key(tenantA, rw...)
		readOnly := s.Key(tenantA, model.ScopeIncidentsRead)
		other := s.Key(apitest.Tenant("b"), rw...)
		inc := createGQL(t, s, key, map[string]any{"title": "secret", "severity": "LOW", "occurredAt": "2024-01-01T00:00:00Z"})

		_, r := s.GQL(key, `{ incidents(first: 100) { nodes { `+fields+` } } }`, nil)
		if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Errorf("complexity: %+v", r.Errors)
		}
		_, r = s.GQL(key, `{ incidents(first: 5) { edges { node { id } } } }`, nil)
		if r.Code() != "DEPTH_LIMIT_EXCEEDED" {
			t.Errorf("depth: %+v", r.Errors)
		}
		// Fragments that spread the next one twice: exponential to walk naively.
		var q strings.Builder
		q.WriteString("{ ...F0 }\n")
		for i := range 40 {
			fmt.Fprintf(&q, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
		}
		q.WriteString("fragment F40 on Query { incidents(first: 1) { totalCount } }\n")
		if _, r := s.GQL(key, q.String(), nil); r.Code() != "QUERY_TOO_LARGE" {
			t.Errorf("fragment bomb: %+v", r.Errors)
		}
		_, r = s.GQL(key, `{ __schema { types { name } } }`, nil)
		if len(r.Errors) == 0 || !strings.Contains(strings.ToLower(r.Errors[0].Message), "introspection") {
			t.Errorf("introspection while disabled: %+v", r.Errors)
		}
		// ... and allowed where enabled (the command's default).
		open := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{Introspection: true}})
		if _, r := open.GQL(open.Key(apitest.Tenant("intro"), rw...), `{ __schema { queryType { name } } }`, nil); len(r.Errors) != 0 ||
			!strings.Contains(string(r.Data), `"Query"`) {
			t.Errorf("introspection while enabled: %s %+v", r.Data, r.Errors)
		}
		status, r := s.GQL("", `{ incidents { totalCount } }`, nil)
		if status != http.StatusUnauthorized || r.Code() != "Unauthorized" {
			t.Errorf("no key: %d %+v", status, r.Errors)
		}
		status, r = s.GQL("ik_aaaaaaaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", `{ incidents { totalCount } }`, nil)
		if status != http.StatusUnauthorized {
			t.Errorf("unknown key: %d", status)
		}
		_, r = s.GQL(readOnly, `mutation { createIncident(input: {title: "x", severity: LOW, occurredAt: "2024-01-01T00:00:00Z"}) { id } }`, nil)
		if r.Code() != "Forbidden" {
			t.Errorf("read-only key wrote: %+v", r.Errors)
		}
		_, r = s.GQL(other, `query($id: ID!) { incident(id: $id) { id } }`, map[string]any{"id": inc.ID})
		if string(r.Data) != `{"incident":null}` {
			t.Errorf("other tenant saw it: %s", r.Data)
		}
		_, r = s.GQL(other, `mutation($id: ID!) { updateIncident(id: $id, input: {title: "pwned"}) { id } }`, map[string]any{"id": inc.ID})
		if r.Code() != "NotFound" {
			t.Errorf("other tenant updated: %+v", r.Errors)
		}
		_, r = s.GQL(other, `{ incidents { totalCount } }`, nil)
		if c := data[conn](t, r, "incidents"); c.TotalCount != 0 {
			t.Errorf("other tenant lists %d", c.TotalCount)
		}
		// Request size is bounded.
		res := s.Do("POST", "/graphql", key, `{"query": "`+strings.Repeat("x", graph.MaxBodyBytes+10)+`"}`)
		if res.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("huge body: %d, want 413", res.Status)
		}
		// Also when the body comes chunked, with no length to judge it by.
		body := io.MultiReader(strings.NewReader(`{"query": "`), strings.NewReader(strings.Repeat("x", graph.MaxBodyBytes+10)), strings.NewReader(`"}`))
		req, err := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/graphql", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		chunked, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		chunked.Body.Close()
		if req.ContentLength != 0 || chunked.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("huge chunked body (length %d): %d, want 413", req.ContentLength, chunked.StatusCode)
		}
		// GET queries work too.
		res = s.Do("GET", "/graphql?query="+strings.ReplaceAll("{ incidents { totalCount } }", " ", "+"), key, nil)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"totalCount":1`) {
			t.Errorf("GET query: %d %s", res.Status, res.Body)
		}
	})
}

func TestExplorer(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		res := s.Do("GET", "/graphql", "", nil, "Accept", "text/html")
		if res.Status != 200 || !strings.Contains(string(res.Body), "/graphiql/assets/") || res.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("explorer: %d %.200s", res.Status, res.Body)
		}
		res = s.Do("GET", "/graphiql/assets/graphiql.min.js", "", nil)
		if res.Status != 200 || len(res.Body) < 100000 {
			t.Errorf("asset: %d %d bytes", res.Status, len(res.Body))
		}
	})
}

// TestOperationCost: a GraphQL operation spends ceil(complexity/100) points
// from the same budget as REST, reported in extensions.cost and the headers;
// an operation that does not fit is refused with 429 without spending.
func TestOperationCost(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{RateLimit: "10-M"})
		key := s.Key(apitest.Tenant("cost"), rw...)
		q := `{ incidents(first: 50) { nodes { id title severity } } }` // complexity 1 + 50 × 4 = 201: 3 points
		res := s.Do("POST", "/graphql", key, map[string]any{"query": q})
		var r struct {
			Extensions struct {
				Cost struct{ Requested, Complexity, Remaining, ResetAt int64 }
			}
		}
		res.JSON(t, &r)
		if r.Extensions.Cost.Requested != 3 || r.Extensions.Cost.Complexity != 201 || r.Extensions.Cost.Remaining != 7 || res.Header.Get("X-RateLimit-Remaining") != "7" {
			t.Errorf("cost %+v, header %s", r.Extensions.Cost, res.Header.Get("X-RateLimit-Remaining"))
		}
		// resetAt is the same window end as the header, within the minute.
		if reset := res.Header.Get("X-RateLimit-Reset"); strconv.FormatInt(r.Extensions.Cost.ResetAt, 10) != reset ||
			r.Extensions.Cost.ResetAt < time.Now().Unix() || r.Extensions.Cost.ResetAt > time.Now().Add(time.Minute).Unix()+1 {
			t.Errorf("resetAt %d, X-RateLimit-Reset %s", r.Extensions.Cost.ResetAt, reset)
		}
		if rest := s.Do("GET", "/v1/incidents", key, nil); rest.Header.Get("X-RateLimit-Remaining") != "6" {
			t.Errorf("REST shares the budget: remaining %s", rest.Header.Get("X-RateLimit-Remaining"))
		}
		s.Do("POST", "/graphql", key, map[string]any{"query": q}).Expect(t, 200) // 3 left
		heavy := s.Do("POST", "/graphql", key, map[string]any{"query": `{ incidents(first: 100) { nodes { id title severity status } } }`})
		var hr apitest.GQLResponse
		heavy.Refusal(t, &hr)
		if heavy.Status != 429 || hr.Code() != "RateLimitExceeded" {
			t.Errorf("heavy operation: %d %+v", heavy.Status, hr.Errors)
		}
		// The refusal spent only the request's own point.
		if rest := s.Do("GET", "/v1/incidents", key, nil); rest.Status != 200 || rest.Header.Get("X-RateLimit-Remaining") != "1" {
			t.Errorf("after the refusal: %d remaining %s", rest.Status, rest.Header.Get("X-RateLimit-Remaining"))
		}
	})
}

func TestAPIKeysOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{KeyCacheTTL: time.Hour})
		tenant := apitest.Tenant("gk")
		admin := s.Key(tenant, model.ScopeAPIKeysAdmin, model.ScopeIncidentsRead)
		_, r := s.GQL(admin, `mutation { createApiKey(input: {name: "dash", scopes: ["incidents:read"]}) { key apiKey { id prefix name scopes tier createdBy revokedAt } } }`, nil)
		type secret struct {
			Key    string
			APIKey struct {
				ID, Prefix, Name, Tier, CreatedBy string
				Scopes                            []string
			} `json:"apiKey"`
		}
		created := data[secret](t, r, "createApiKey")
		if !strings.HasPrefix(created.Key, created.APIKey.Prefix+"_") || created.APIKey.Tier != "default" || created.APIKey.Scopes[0] != "incidents:read" {
			t.Fatalf("created %+v", created)
		}
		_, r = s.GQL(admin, `{ apiKeys { id name } }`, nil)
		if keys := data[[]map[string]any](t, r, "apiKeys"); len(keys) != 2 {
			t.Errorf("apiKeys %v", keys)
		}
		_, r = s.GQL(admin, `mutation($id: ID!) { rotateApiKey(id: $id, overlapSeconds: 0) { key apiKey { id } } }`, map[string]any{"id": created.APIKey.ID})
		rotated := data[secret](t, r, "rotateApiKey")
		// No overlap: the old key is refused by the very next request.
		if st := s.Do("GET", "/v1/incidents", created.Key, nil).Status; st != 401 {
			t.Errorf("the rotated-away key: %d", st)
		}
		if st := s.Do("GET", "/v1/incidents", rotated.Key, nil).Status; st != 200 {
			t.Errorf("rotated key: %d", st)
		}
		_, r = s.GQL(admin, `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, map[string]any{"id": rotated.APIKey.ID})
		if got := data[map[string]any](t, r, "revokeApiKey"); got["revokedAt"] == nil {
			t.Errorf("revoke %v", got)
		}
		// The revoked key is refused (not merely short of a scope: incidents
		// are within its scopes).
		if st, r := s.GQL(rotated.Key, `{ incidents { totalCount } }`, nil); st != 401 || r.Code() != "Unauthorized" {
			t.Errorf("revoked key: %d %+v", st, r.Errors)
		}
		_, r = s.GQL(s.Key(tenant, model.ScopeWrite), `{ apiKeys { id } }`, nil)
		if r.Code() != "Forbidden" {
			t.Errorf("without apikeys:admin: %+v", r.Errors)
		}
		_, r = s.GQL(admin, `mutation { createApiKey(input: {name: "x", scopes: ["incidents:write"]}) { key } }`, nil)
		if r.Code() != "ValidationError" {
			t.Errorf("escalation: %+v", r.Errors)
		}
	})
}

func TestAuditOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("ga")
		key := s.Key(tenant, rw...)
		auditor := s.Key(tenant, model.ScopeAuditRead)
		inc := createGQL(t, s, key, map[string]any{"title": "x", "severity": "LOW", "occurredAt": "2024-01-01T00:00:00Z"})
		s.GQL(key, `mutation($id: ID!) { updateIncident(id: $id, input: {status: INVESTIGATING}) { id } }`, map[string]any{"id": inc.ID})
		_, r := s.GQL(auditor, `{ auditEvents(first: 1) { nodes { action resourceId actor requestId changes { field before after } } pageInfo { hasNextPage endCursor } } }`, nil)
		type page struct {
			Nodes []struct {
				Action, ResourceID, Actor, RequestID string
				Changes                              []struct {
					Field         string
					Before, After any
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
		p := data[page](t, r, "auditEvents")
		if len(p.Nodes) != 1 || p.Nodes[0].Action != "incident.update" || p.Nodes[0].RequestID == "" || !p.PageInfo.HasNextPage ||
			len(p.Nodes[0].Changes) != 1 || p.Nodes[0].Changes[0].Before != "open" || p.Nodes[0].Changes[0].After != "investigating" {
			t.Fatalf("page %+v", p)
		}
		_, r = s.GQL(auditor, `query($after: String) { auditEvents(first: 5, after: $after) { nodes { action } pageInfo { hasNextPage } } }`, map[string]any{"after": *p.PageInfo.EndCursor})
		// then the creation, and the two keys the test began with (issued through the command line's path)
		if p2 := data[page](t, r, "auditEvents"); len(p2.Nodes) != 3 || p2.Nodes[0].Action != "incident.create" || p2.PageInfo.HasNextPage {
			t.Errorf("second page %+v", p2)
		}
		if _, r := s.GQL(key, `{ auditEvents { nodes { id } } }`, nil); r.Code() != "Forbidden" {
			t.Errorf("without audit:read: %+v", r.Errors)
		}
	})
}

func TestComponentsOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("gc"), model.ScopeComponentsWrite)
		_, r := s.GQL(key, `mutation { createComponent(input: {displayName: "API", labels: [{key: "region", value: "eu"}]}) { id displayName labels { key value } } }`, nil)
		c := data[map[string]any](t, r, "createComponent")
		id := c["id"].(string)
		_, r = s.GQL(key, `{ components(filter: {name: "ap", labels: [{key: "region", value: "eu"}]}) { totalCount nodes { id } } }`, nil)
		if p := data[map[string]any](t, r, "components"); p["totalCount"] != float64(1) {
			t.Errorf("filter %v", p)
		}
		_, r = s.GQL(key, `mutation($id: ID!) { updateComponent(id: $id, input: {labels: []}) { labels { key } } }`, map[string]any{"id": id})
		if u := data[map[string]any](t, r, "updateComponent"); len(u["labels"].([]any)) != 0 {
			t.Errorf("update %v", u)
		}
		_, r = s.GQL(key, `mutation { createComponent(input: {displayName: ""}) { id } }`, nil)
		if r.Code() != "ValidationError" {
			t.Errorf("blank name: %+v", r.Errors)
		}
		_, r = s.GQL(s.Key(apitest.Tenant("gc2"), model.ScopeComponentsRead), `query($id: ID!) { component(id: $id) { id } }`, map[string]any{"id": id})
		if string(r.Data) != `{"component":null}` {
			t.Errorf("other tenant: %s", r.Data)
		}
		_, r = s.GQL(key, `mutation($id: ID!) { deleteComponent(id: $id) }`, map[string]any{"id": id})
		data[string](t, r, "deleteComponent")
	})
}

// TestRelationsAreBatched: incident → components → incidents → components
// costs the same few statements for 2 incidents as for 30.
func TestRelationsAreBatched(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		// Four nested lists, each priced at its default size (20), cost far
		// more than the default limit; this test counts statements.
		s := apitest.Start(t, b, apitest.Config{GraphQL: graph.Config{ComplexityLimit: 1 << 30}, Webhooks: quiet})
		key := s.Key(apitest.Tenant("rel"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for i := range 30 {
			name := fmt.Sprint("c", i)
			s.Do("POST", "/v1/components", key, map[string]any{"displayName": name})
			// Each impact level gets its own incident; components join them.
			s.Do("POST", "/v1/component_status", key, map[string]any{"name": name, "impact": i % 4})
		}
		q := func(n int) string {
			return fmt.Sprintf(`{ incidents(first: %d) { nodes { id updates { order displayName } affects { impact component { id status activelyAffectedBy { impact incident { id affects { component { id } } } } } } } } }`, n)
		}
		small, _ := statements(t, s, key, q(1))
		large, r := statements(t, s, key, q(30))
		if large > small+2 || large > 12 {
			t.Errorf("statements: %d for 1 incident, %d for 30", small, large)
		}
		var got struct {
			Incidents struct {
				Nodes []struct {
					Affects []struct {
						Impact    string
						Component struct {
							Status             string
							ActivelyAffectedBy []struct{ Impact string }
						}
					}
					Updates []struct{ DisplayName string }
				}
			}
		}
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range got.Incidents.Nodes {
			total += len(n.Affects)
			for _, a := range n.Affects {
				if a.Component.Status != a.Impact || len(a.Component.ActivelyAffectedBy) != 1 {
					t.Errorf("component status %q, affect impact %q, %d affecting", a.Component.Status, a.Impact, len(a.Component.ActivelyAffectedBy))
				}
			}
			if len(n.Updates) == 0 {
				t.Error("an incident without its timeline")
			}
		}
		if total != 30 {
			t.Errorf("%d affects across the incidents, want 30", total)
		}
	})
}

func TestStatusOverGraphQL(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("gst"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		_, r := s.GQL(key, `mutation { createComponent(input: {displayName: "API", labels: [{key: "region", value: "eu"}]}) { id } }`, nil)
		comp := data[map[string]any](t, r, "createComponent")["id"].(string)
		_, r = s.GQL(key, `mutation { reportComponentStatus(input: {name: "API", impact: "major", attributes: [{key: "region", value: "eu"}]}) { created impact incident { id severity affects { impact component { id } } updates { displayName } } } }`, nil)
		rep := data[map[string]any](t, r, "reportComponentStatus")
		inc := rep["incident"].(map[string]any)
		if rep["created"] != true || rep["impact"] != "major" || inc["severity"] != "HIGH" {
			t.Fatalf("report %v", rep)
		}
		_, r = s.GQL(key, `mutation($id: ID!) { addIncidentUpdate(incidentId: $id, input: {displayName: "Investigating"}) { order } }`, map[string]any{"id": inc["id"]})
		data[map[string]any](t, r, "addIncidentUpdate")
		_, r = s.GQL(key, `{ status { components { id status } openIncidents { id } } }`, nil)
		st := data[map[string]any](t, r, "status")
		comps := st["components"].([]any)
		if len(comps) != 1 || comps[0].(map[string]any)["status"] != "major" || len(st["openIncidents"].([]any)) != 1 {
			t.Errorf("status %v", st)
		}
		now := time.Now().UTC()
		_, r = s.GQL(key, `mutation($c: ID!, $s: Time!, $e: Time!) { createMaintenance(input: {description: "x", startsAt: $s, endsAt: $e, components: [$c]}) { id components { id } } }`,
			map[string]any{"c": comp, "s": now.Add(-time.Minute).Format(time.RFC3339), "e": now.Add(time.Hour).Format(time.RFC3339)})
		m := data[map[string]any](t, r, "createMaintenance")
		_, r = s.GQL(key, `mutation { reportComponentStatus(input: {name: "API", impact: "outage", attributes: [{key: "region", value: "eu"}]}) { incident { id } maintenance { id } } }`, nil)
		if rep := data[map[string]any](t, r, "reportComponentStatus"); rep["incident"] != nil || rep["maintenance"].(map[string]any)["id"] != m["id"] {
			t.Errorf("report during maintenance %v", rep)
		}
		_, r = s.GQL(key, `{ maintenance { id } }`, nil)
		if ms := data[[]any](t, r, "maintenance"); len(ms) != 1 {
			t.Errorf("maintenance %v", ms)
		}
		_, r = s.GQL(key, `mutation { reportComponentStatus(input: {name: "API", impact: "severe"}) { created } }`, nil)
		if r.Code() != "ValidationError" {
			t.Errorf("bad impact: %+v", r.Errors)
		}
	})
}

// TestCatalogue: the impact types and severities read the same over both
// transports, the mapping they publish is the one ingestion applies, and the
// incidents it opens show their affects.
func TestCatalogue(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("cat")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		other := s.Key(apitest.Tenant("cat-other"), model.ScopeIncidentsRead)
		var types struct {
			Data []struct {
				Name, Severity string
				Value          int
			}
		}
		s.Do("GET", "/v1/impact-types", key, nil).JSON(t, &types)
		_, r := s.GQL(key, `{ impactTypes { name value severity } severities { name value } }`, nil)
		gqlTypes := data[[]struct {
			Name, Severity string
			Value          int
		}](t, r, "impactTypes")
		if len(types.Data) != 4 || len(gqlTypes) != 4 {
			t.Fatalf("impact types: REST %v, GraphQL %v", types.Data, gqlTypes)
		}
		for i, it := range types.Data {
			if g := gqlTypes[i]; g.Name != it.Name || g.Value != it.Value || g.Severity != strings.ToUpper(it.Severity) || it.Value != i {
				t.Errorf("impact type %d: REST %+v, GraphQL %+v", i, it, g)
			}
			// Each impact on its own component opens an incident of the published severity.
			comp := rest(t, s, key, "POST", "/v1/components", map[string]any{"displayName": "c-" + it.Name})
			rep := rest(t, s, key, "POST", "/v1/component_status", map[string]any{"name": "c-" + it.Name, "impact": it.Value})
			inc, _ := rep["incident"].(map[string]any)
			if inc == nil || inc["severity"] != it.Severity {
				t.Fatalf("%s opens %v, want severity %s", it.Name, rep["incident"], it.Severity)
			}
			// The incident's affects are readable over REST, and only by its tenant.
			var affects struct{ Data []struct{ ID, Impact string } }
			s.Do("GET", "/v1/incidents/"+inc["id"].(string)+"/affects", key, nil).JSON(t, &affects)
			if len(affects.Data) != 1 || affects.Data[0].ID != comp["id"] || affects.Data[0].Impact != it.Name {
				t.Errorf("affects of the %s incident: %+v", it.Name, affects.Data)
			}
			if res := s.Do("GET", "/v1/incidents/"+inc["id"].(string)+"/affects", other, nil); res.Status != 404 {
				t.Errorf("another tenant's affects: %d", res.Status)
			}
		}
		var sev struct {
			Data []struct {
				Name  string
				Value int
			}
		}
		s.Do("GET", "/v1/severities", key, nil).JSON(t, &sev)
		gqlSev := data[[]struct {
			Name  string
			Value int
		}](t, r, "severities")
		last := -1
		for i, l := range sev.Data {
			if l.Value <= last || l.Value > 100 || gqlSev[i].Value != l.Value || gqlSev[i].Name != strings.ToUpper(l.Name) {
				t.Errorf("severity %d: REST %+v, GraphQL %+v", i, l, gqlSev[i])
			}
			last = l.Value
		}
		if len(sev.Data) != len(model.Severities) {
			t.Errorf("severities: %v", sev.Data)
		}
		admin := s.Key(tenant, model.ScopeAPIKeysAdmin)
		for path, want := range map[string]int{"/v1/impact-types?x=1": 400, "/v1/severities": 403} {
			if res := s.Do("GET", path, admin, nil); res.Status != want {
				t.Errorf("%s: %d, want %d", path, res.Status, want)
			}
		}
		if res := s.Do("GET", "/v1/severities", "", nil); res.Status != 401 {
			t.Errorf("no key: %d", res.Status)
		}
		if _, r := s.GQL(admin, `{ severities { name } }`, nil); r.Code() != "Forbidden" {
			t.Errorf("GraphQL without scope: %+v", r.Errors)
		}
		componentsOnly := s.Key(tenant, model.ScopeComponentsRead)
		if res := s.Do("GET", "/v1/impact-types", componentsOnly, nil); res.Status != 200 {
			t.Errorf("components:read: %d", res.Status)
		}
	})
}
