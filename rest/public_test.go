package rest_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

type publicSummary struct {
	Components []struct {
		ID, DisplayName, Status, CreatedBy string
	}
	OpenIncidents []struct{ ID, Title, CreatedBy, UpdatedBy string }
}

func publish(t *testing.T, s *apitest.Server, key string, body map[string]any) {
	t.Helper()
	if r := s.Do("PUT", "/v1/status/publication", key, body); r.Status != http.StatusNoContent {
		t.Fatalf("publish %v: %d %s", body, r.Status, r.Body)
	}
}

// TestPublicationOrigins: the allowed origins are validated (one rule) and
// normalised, and the public summary answers CORS to them only.
func TestPublicationOrigins(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("origins")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for _, bad := range []any{"https://a.example", []any{"ftp://a.example"}, []any{"https://a.example/path"},
			[]any{"https://user@a.example"}, []any{"https://a.example?q=1"}, []any{"a.example"}, []any{1}, []any{"https://a.example:99999"},
			[]any{"https://a.example;sandbox"}, []any{"https://x.example,frame-ancestors"}} {
			p := wantProblem(t, s.Do("PUT", "/v1/status/publication", key, map[string]any{"public": true, "allowedOrigins": bad}), 400, "ValidationError")
			if len(p.Details) == 0 || !strings.HasPrefix(p.Details[0].Field, "allowedOrigins") {
				t.Errorf("%v: %+v", bad, p)
			}
		}
		// Refused writes changed nothing: still unpublished. Any page may
		// read that (a widget stops instead of retrying).
		unpublished := s.Do("GET", "/v1/public/"+ten+"/status", "", nil, "Origin", "https://a.example")
		wantProblem(t, unpublished, 404, "NotFound")
		if got := unpublished.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("the 404 of an unpublished status: Access-Control-Allow-Origin %q", got)
		}
		publish(t, s, key, map[string]any{"public": true, "allowedOrigins": []string{"HTTPS://Status.Example:443", "http://localhost:8080"}})
		get := func(origin string) *apitest.Response {
			return s.Do("GET", "/v1/public/"+ten+"/status", "", nil, "Origin", origin)
		}
		for origin, allowed := range map[string]bool{"https://status.example": true, "http://localhost:8080": true,
			"https://evil.example": false, "http://status.example": false, "https://status.example.evil": false} {
			res := get(origin).Expect(t, 200)
			if got := res.Header.Get("Access-Control-Allow-Origin"); (got == origin) != allowed || (!allowed && got != "") {
				t.Errorf("Origin %s: Access-Control-Allow-Origin %q", origin, got)
			}
			if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Origin %s: no Vary: Origin", origin)
			}
		}
		publish(t, s, key, map[string]any{"public": true, "allowedOrigins": []string{"*"}})
		if got := get("https://anyone.example").Header.Get("Access-Control-Allow-Origin"); got != "https://anyone.example" {
			t.Errorf("with *: %q", got)
		}
		// A full replacement: absent origins are none.
		publish(t, s, key, map[string]any{"public": true})
		if got := get("https://anyone.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("after clearing: %q", got)
		}
	})
}

// TestPublicSummaryCaching: a weak ETag names the content, not the moment;
// If-None-Match with it is a 304 until something public changes.
func TestPublicSummaryCaching(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("etag")
		key := s.Key(tenant, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).Expect(t, 201)
		publish(t, s, key, map[string]any{"public": true})
		path := "/v1/public/" + tenant + "/status"
		first := s.Do("GET", path, "", nil).Expect(t, 200)
		etag := first.Header.Get("ETag")
		if !strings.HasPrefix(etag, `W/"`) || !strings.HasPrefix(first.Header.Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("headers %v", first.Header)
		}
		// Read again later: another generatedAt, the same tag.
		if again := s.Do("GET", path, "", nil); again.Header.Get("ETag") != etag {
			t.Errorf("the same content, another tag: %s then %s", etag, again.Header.Get("ETag"))
		}
		for _, inm := range []string{etag, strings.TrimPrefix(etag, "W/"), `"other", ` + etag, "*"} {
			if r := s.Do("GET", path, "", nil, "If-None-Match", inm); r.Status != http.StatusNotModified || len(r.Body) != 0 {
				t.Errorf("If-None-Match %s: %d %s", inm, r.Status, r.Body)
			}
		}
		s.Do("GET", path, "", nil, "If-None-Match", `W/"other"`).Expect(t, 200)
		send(t, s, key, "API", "eu", "outage")
		changed := s.Do("GET", path, "", nil, "If-None-Match", etag).Expect(t, 200)
		if changed.Header.Get("ETag") == etag {
			t.Error("an incident opened and the tag stayed")
		}
		var sum publicSummary
		changed.JSON(t, &sum)
		if len(sum.OpenIncidents) != 1 || sum.Components[0].Status != "outage" {
			t.Errorf("after the report: %+v", sum)
		}
	})
}

// TestPublicStream: the public SSE stream starts with the current state,
// follows every change the moment it commits, never shows another tenant's
// incidents or who did what, resumes without repeating, answers CORS, and
// ends when the tenant unpublishes.
func TestPublicStream(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		// No periodic refresh: every message here comes from an event.
		s := apitest.Start(t, b, apitest.Config{Public: live.PublicOptions{Refresh: time.Hour}})
		ten, other := apitest.Tenant("live"), apitest.Tenant("live-other")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		okey := s.Key(other, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		for _, k := range []string{key, okey} {
			s.Do("POST", "/v1/components", k, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).Expect(t, 201)
		}
		path := "/v1/public/" + ten + "/status/events"
		wantProblem(t, s.Do("GET", path, "", nil), 404, "NotFound") // not published yet
		publish(t, s, key, map[string]any{"public": true, "allowedOrigins": []string{"https://widget.example"}})
		publish(t, s, okey, map[string]any{"public": true})

		st := s.OpenSSE(t, path, "", "Origin", "https://widget.example")
		if got := st.Response.Header.Get("Access-Control-Allow-Origin"); got != "https://widget.example" {
			t.Errorf("stream CORS: %q", got)
		}
		decode := func(e apitest.SSEEvent) publicSummary {
			t.Helper()
			var sum publicSummary
			if e.Type != "status" || e.ID == "" {
				t.Fatalf("event %+v", e)
			}
			if err := json.Unmarshal(e.Data, &sum); err != nil {
				t.Fatal(err)
			}
			return sum
		}
		first := st.Next(t, 10*time.Second)
		if sum := decode(first); len(sum.Components) != 1 || sum.Components[0].Status != "operational" || len(sum.OpenIncidents) != 0 {
			t.Fatalf("first state %s", first.Data)
		}
		if etag := s.Do("GET", "/v1/public/"+ten+"/status", "", nil).Header.Get("ETag"); etag != `W/"`+first.ID+`"` {
			t.Errorf("the stream's id %s is not the summary's ETag %s", first.ID, etag)
		}
		// Another tenant's incident: nothing for this stream (the next
		// message, below, is this tenant's own change).
		send(t, s, okey, "API", "eu", "outage")
		send(t, s, key, "API", "eu", "minor")
		second := st.Next(t, 10*time.Second)
		sum := decode(second)
		if len(sum.OpenIncidents) != 1 || sum.Components[0].Status != "minor" || second.ID == first.ID {
			t.Fatalf("after this tenant's report: %s", second.Data)
		}
		if sum.OpenIncidents[0].CreatedBy != "" || sum.OpenIncidents[0].UpdatedBy != "" || regexp.MustCompile(`"(createdBy|updatedBy)":"[^"]`).Match(second.Data) {
			t.Errorf("who did what is public: %s", second.Data)
		}

		// A timeline entry is a change too.
		s.Do("POST", "/v1/incidents/"+sum.OpenIncidents[0].ID+"/updates", key, map[string]any{"displayName": "Investigating", "description": "looking"}).Expect(t, 201)
		third := st.Next(t, 10*time.Second)
		var withUpdates struct {
			OpenIncidentUpdates map[string][]struct{ DisplayName, CreatedBy string }
		}
		if err := json.Unmarshal(third.Data, &withUpdates); err != nil {
			t.Fatal(err)
		}
		if ups := withUpdates.OpenIncidentUpdates[sum.OpenIncidents[0].ID]; len(ups) == 0 || ups[len(ups)-1].DisplayName != "Investigating" || ups[len(ups)-1].CreatedBy != "" {
			t.Fatalf("after an update: %s", third.Data)
		}
		second = third

		// A component created (no event) reaches the stream too, at once.
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "Web", "labels": map[string]string{"region": "us"}}).Expect(t, 201)
		withWeb := st.Next(t, 10*time.Second)
		if sum := decode(withWeb); len(sum.Components) != 2 {
			t.Fatalf("after a component was created: %s", withWeb.Data)
		}
		second = withWeb

		// A resume with the current version gets no repeat: its first
		// message is the next change.
		resumed := s.OpenSSE(t, path, "", "Last-Event-ID", second.ID)
		send(t, s, key, "API", "eu", "outage")
		if e := resumed.Next(t, 10*time.Second); e.ID == second.ID || decode(e).Components[0].Status != "outage" {
			t.Errorf("resumed: %+v", e)
		}
		// A stale one gets the current state at once.
		stale := s.OpenSSE(t, path, "", "Last-Event-ID", first.ID)
		if e := stale.Next(t, 10*time.Second); decode(e).Components[0].Status != "outage" {
			t.Errorf("stale resume: %s", e.Data)
		}

		// Unpublishing ends every stream of the tenant, with the reason.
		publish(t, s, key, map[string]any{"public": false})
		for _, x := range []*apitest.SSE{st, resumed, stale} {
			var e apitest.SSEEvent
			for e = x.Next(t, 10*time.Second); e.Type == "status"; e = x.Next(t, 10*time.Second) {
			}
			if e.Type != "end" || string(e.Data) != `{"reason":"unpublished"}` {
				t.Errorf("after unpublishing: %+v", e)
			}
			if _, err := x.TryNext(10 * time.Second); err == nil || !strings.Contains(err.Error(), "ended") {
				t.Errorf("the stream stayed open: %v", err)
			}
		}
		wantProblem(t, s.Do("GET", path, "", nil), 404, "NotFound")
		if n := s.App.Public.Count(); n != 0 {
			t.Errorf("%d public viewers left", n)
		}
	})
}

// TestPublicStreamLimits: one address may hold a bounded number of public
// streams; a closed one frees its slot.
func TestPublicStreamLimits(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Public: live.PublicOptions{MaxPerIP: 2}})
		ten := apitest.Tenant("limits")
		key := s.Key(ten, model.ScopeComponentsWrite)
		publish(t, s, key, map[string]any{"public": true})
		path := "/v1/public/" + ten + "/status/events"
		a := s.OpenSSE(t, path, "")
		a.Next(t, 10*time.Second)
		s.OpenSSE(t, path, "").Next(t, 10*time.Second)
		wantProblem(t, s.Do("GET", path, "", nil), 429, "RateLimitExceeded")
		a.Close()
		deadline := time.Now().Add(10 * time.Second)
		for s.App.Public.Count() != 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the server notices the closed connection
		}
		s.OpenSSE(t, path, "").Next(t, 10*time.Second)
	})
}
