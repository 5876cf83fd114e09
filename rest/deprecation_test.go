package rest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestDeprecatedAlias: /api/v1 answers as /v1 but says it is deprecated
// (Deprecation, Sunset, Link to the successor and the policy), except the
// monitoring protocol's own route; /v1 says nothing of the kind.
func TestDeprecatedAlias(t *testing.T) {
	s := apitest.Start(t, apitest.Backends(t)[0], apitest.Config{})
	key := s.Key(apitest.Tenant("dep"), model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
	res := s.Do("GET", "/api/v1/incidents?limit=1", key, nil).Expect(t, 200)
	if res.Header.Get("Deprecation") != "@1796169600" {
		t.Errorf("Deprecation %q", res.Header.Get("Deprecation"))
	}
	sunset, err := time.Parse(http.TimeFormat, res.Header.Get("Sunset"))
	if err != nil || !sunset.Equal(time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Sunset %q %v", res.Header.Get("Sunset"), err)
	}
	if link := res.Header.Get("Link"); !strings.Contains(link, `</v1/incidents>; rel="successor-version"`) || !strings.Contains(link, `rel="deprecation"`) {
		t.Errorf("Link %q", link)
	}
	if r := s.Do("GET", "/v1/incidents?limit=1", key, nil); r.Header.Get("Deprecation") != "" || r.Header.Get("Sunset") != "" {
		t.Errorf("/v1 is not deprecated: %v", r.Header)
	}
	if r := s.Do("GET", "/api/v1/component_status", key, nil); r.Header.Get("Deprecation") != "" {
		t.Errorf("the monitoring protocol's route is its contract's path, not deprecated: %v", r.Header)
	}
}
