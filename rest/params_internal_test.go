package rest

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/incidentd/incidentd/model"
)

func TestSplitList(t *testing.T) {
	for v, want := range map[string][]string{
		"":                        nil,
		"a":                       {"a"},
		"a,b":                     {"a", "b"},
		" a , b ,,":               {"a", "b"},
		`"Billing, EU",web`:       {"Billing, EU", "web"},
		` "a,b" , c`:              {"a,b", "c"},
		`"say ""hi""",x`:          {`say "hi"`, "x"},
		`O"Brien`:                 {`O"Brien`}, // a quote inside an unquoted value is ordinary
		`""`:                      nil,         // empty, quoted or not, counts as absent
		`"region:eu,west",a:b`:    {"region:eu,west", "a:b"},
		`"trailing space " ,x`:    {"trailing space ", "x"},
		`"only one quoted value"`: {"only one quoted value"},
	} {
		got, ok := splitList(v)
		if !ok || !slices.Equal(got, want) {
			t.Errorf("splitList(%q) = %q %v, want %q", v, got, ok, want)
		}
	}
	for _, v := range []string{`"unterminated`, `"a"b`, `"a" b,c`, `x,"y`} {
		if _, ok := splitList(v); ok {
			t.Errorf("splitList(%q) accepted", v)
		}
	}
}

// TestEventServiceList: a service containing a comma can be filtered on,
// which comma-joining the repeats made impossible.
func TestEventServiceList(t *testing.T) {
	for raw, want := range map[string][]string{
		"service=" + url.QueryEscape(`"Billing, EU",web`): {"Billing, EU", "web"},
		"service=a,b&service=c":                           {"a", "b", "c"},
		"service=a&service=":                              {"a"},
	} {
		f, _, err := parseEventQuery(httptest.NewRequest("GET", "/v1/incidents/events?"+raw, nil))
		if err != nil || !slices.Equal(f.Services, want) {
			t.Errorf("%s: %q %v, want %q", raw, f.Services, err, want)
		}
	}
	f, after, err := parseEventQuery(httptest.NewRequest("GET", "/v1/incidents/events?status=open&status=resolved,closed&after=", nil))
	if err != nil || after != "" || !slices.Equal(f.Statuses, []model.Status{model.StatusOpen, model.StatusResolved, model.StatusClosed}) {
		t.Errorf("statuses %v, after %q, err %v", f.Statuses, after, err)
	}
}

// TestIncidentQueryRule: the incidents reader keeps its documented
// behaviour under the shared rule.
func TestIncidentQueryRule(t *testing.T) {
	q, err := parseIncidentQuery(url.Values{"limit": {""}, "status": {"open", "closed"}, "service": {"a,b"}})
	if err != nil || q.Limit != model.DefaultLimit || len(q.Filter.Statuses) != 2 || *q.Filter.Service != "a,b" {
		t.Errorf("%+v %v", q, err)
	}
	_, err = parseIncidentQuery(url.Values{"limit": {"0"}, "sort": {"x:y"}, "offset": {"x"}, "keyword": {"a", "b"}})
	var fields []string
	for _, d := range model.AsError(err).Details {
		fields = append(fields, d.Field)
	}
	// Every problem of the request at once, in field order.
	if !slices.Equal(fields, []string{"keyword", "limit", "offset", "sort"}) {
		t.Errorf("details %+v", model.AsError(err).Details)
	}
}
