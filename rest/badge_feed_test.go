package rest_test

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestPublicBadges: the overall badge is the worst component's status, a
// component's badge is its own, labelled with its name; text is escaped;
// the ETag changes with the status; unknown tenants and components are 404.
func TestPublicBadges(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("badge")
		key := s.Key(ten, model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		api := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API <&>", "labels": map[string]string{"region": "eu"}}).
			Expect(t, 201).Map(t)["id"].(string)
		web := s.Do("POST", "/v1/components", key, map[string]any{"displayName": "Web", "labels": map[string]string{"region": "us"}}).
			Expect(t, 201).Map(t)["id"].(string)
		path := "/v1/public/" + ten + "/badge.svg"
		wantProblem(t, s.Do("GET", path, "", nil), 404, "NotFound")
		publish(t, s, key, map[string]any{"public": true})

		svg := func(q string) *apitest.Response {
			t.Helper()
			res := s.Do("GET", path+q, "", nil).Expect(t, 200)
			if res.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public") {
				t.Fatalf("headers %v", res.Header)
			}
			var doc struct {
				XMLName xml.Name
				Title   string `xml:"title"`
			}
			if err := xml.Unmarshal(res.Body, &doc); err != nil || doc.XMLName.Local != "svg" {
				t.Fatalf("not an SVG document: %v %s", err, res.Body)
			}
			return res
		}
		title := func(res *apitest.Response) string {
			var doc struct {
				Title string `xml:"title"`
			}
			_ = xml.Unmarshal(res.Body, &doc)
			return doc.Title
		}
		calm := svg("")
		if got := title(calm); got != "status: operational" {
			t.Errorf("overall: %q", got)
		}
		send(t, s, key, "API <&>", "eu", "major")
		if got := title(svg("")); got != "status: major" {
			t.Errorf("overall with API in major: %q", got)
		}
		if got := title(svg("?component=" + api)); got != "API <&>: major" {
			t.Errorf("API: %q", got)
		}
		if got := title(svg("?component=" + web + "&label=web%20tier")); got != "web tier: operational" {
			t.Errorf("Web: %q", got)
		}
		if strings.Contains(string(svg("?component="+api).Body), "<&>") {
			t.Error("a component's name reached the SVG unescaped")
		}
		// Cacheable: 304 while the same, a new tag when the status changes.
		etag := svg("?component=" + api).Header.Get("ETag")
		if r := s.Do("GET", path+"?component="+api, "", nil, "If-None-Match", etag); r.Status != http.StatusNotModified {
			t.Errorf("If-None-Match: %d", r.Status)
		}
		if etag == calm.Header.Get("ETag") {
			t.Error("different badges, one tag")
		}
		wantProblem(t, s.Do("GET", path+"?component=cmp_nope", "", nil), 404, "NotFound")
		wantProblem(t, s.Do("GET", path+"?label="+strings.Repeat("x", 41), "", nil), 400, "ValidationError")
		wantProblem(t, s.Do("GET", path+"?colour=red", "", nil), 400, "ValidationError")
		wantProblem(t, s.Do("GET", path+"?label=%01x", "", nil), 400, "ValidationError")
	})
}

type atomFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string   `xml:"title"`
	Entries []struct {
		Title   string `xml:"title"`
		ID      string `xml:"id"`
		Content string `xml:"content"`
		Link    struct {
			Href string `xml:"href,attr"`
		} `xml:"link"`
	} `xml:"entry"`
}

type rssFeed struct {
	XMLName xml.Name `xml:"rss"`
	Items   []struct {
		Title       string `xml:"title"`
		Link        string `xml:"link"`
		Description string `xml:"description"`
	} `xml:"channel>item"`
}

// TestPublicFeeds: Atom and RSS list a published tenant's recent
// incidents, newest first, with their timelines, escaped, and nothing of
// another tenant's.
func TestPublicFeeds(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten, other := apitest.Tenant("feed"), apitest.Tenant("feed-other")
		key := s.Key(ten, model.ScopeIncidentsWrite)
		okey := s.Key(other, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
		wantProblem(t, s.Do("GET", "/v1/public/"+ten+"/feed.atom", "", nil), 404, "NotFound")
		pub := s.Key(ten, model.ScopeComponentsWrite)
		publish(t, s, pub, map[string]any{"public": true})
		publish(t, s, okey, map[string]any{"public": true})
		now := "2026-12-01T10:00:00Z"
		first := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "Database <b>slow</b>", "severity": "high", "occurredAt": "2026-12-01T09:00:00Z"}).
			Expect(t, 201).Map(t)["id"].(string)
		second := s.Do("POST", "/v1/incidents", key, map[string]any{"title": "Gateway down", "severity": "critical", "occurredAt": now}).
			Expect(t, 201).Map(t)["id"].(string)
		s.Do("POST", "/v1/incidents/"+first+"/updates", key, map[string]any{"displayName": "Identified", "description": "an index <script>"}).Expect(t, 201)
		s.Do("PATCH", "/v1/incidents/"+first, key, map[string]any{"status": "resolved"}).Expect(t, 200)
		s.Do("POST", "/v1/incidents", okey, map[string]any{"title": "Other tenant's", "severity": "low", "occurredAt": now}).Expect(t, 201)

		// A client's forwarding headers (no trusted proxy) never name the links.
		res := s.Do("GET", "/v1/public/"+ten+"/feed.atom", "", nil, "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https").Expect(t, 200)
		if strings.Contains(string(res.Body), "evil.example") {
			t.Error("a client's X-Forwarded-Host named the feed's links")
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/atom+xml") {
			t.Errorf("content type %q", res.Header.Get("Content-Type"))
		}
		var atom atomFeed
		if err := xml.Unmarshal(res.Body, &atom); err != nil {
			t.Fatalf("atom: %v\n%s", err, res.Body)
		}
		if len(atom.Entries) != 2 || atom.Entries[0].Title != "Gateway down" || atom.Entries[1].Title != "[Resolved] Database <b>slow</b>" ||
			!strings.HasSuffix(atom.Entries[1].Link.Href, "/status/"+ten+"#"+first) || !strings.HasSuffix(atom.Entries[0].ID, "#"+second) {
			t.Fatalf("atom entries %+v", atom.Entries)
		}
		// The content is HTML the feed carries as text: the update is in
		// it, its markup escaped once more.
		if c := atom.Entries[1].Content; !strings.Contains(c, "<strong>Identified</strong>") || !strings.Contains(c, "an index &lt;script&gt;") {
			t.Errorf("atom content %q", c)
		}
		var rss rssFeed
		res = s.Do("GET", "/v1/public/"+ten+"/feed.rss", "", nil).Expect(t, 200)
		if err := xml.Unmarshal(res.Body, &rss); err != nil || len(rss.Items) != 2 || rss.Items[1].Title != "[Resolved] Database <b>slow</b>" ||
			!strings.Contains(rss.Items[1].Description, "Identified") {
			t.Fatalf("rss: %v %+v", err, rss.Items)
		}
		if strings.Contains(string(res.Body), "Other tenant") {
			t.Error("another tenant's incident in the feed")
		}
	})
}
