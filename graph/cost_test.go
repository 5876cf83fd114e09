package graph_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// TestAliasedListsRefusedByCost is the reviewer's reproduction: 600 aliases
// of the status summary's components with their labels, on a tenant with
// many components. Each list is priced at what it can answer, so the
// operation is refused by its complexity before any statement runs.
func TestAliasedListsRefusedByCost(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("cost"), model.ScopeComponentsWrite, model.ScopeIncidentsRead)
		const components = 120
		for i := range components {
			_, r := s.GQL(key, `mutation($n: String!) { createComponent(input: {displayName: $n, labels: [{key: "a", value: "1"}, {key: "b", value: "2"}]}) { id } }`,
				map[string]any{"n": fmt.Sprint("c", i)})
			data[map[string]any](t, r, "createComponent")
		}
		var q strings.Builder
		q.WriteString("{")
		for i := range 600 {
			fmt.Fprintf(&q, " a%d: status { components { id displayName labels { key value } status } }", i)
		}
		q.WriteString(" }")
		s.GQL(key, `{ status { generatedAt } }`, nil) // warm the key cache
		least := int64(math.MaxInt64)
		for range 3 {
			before := s.Store.Statements()
			_, r := s.GQL(key, q.String(), nil)
			least = min(least, s.Store.Statements()-before)
			if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || string(r.Data) != "null" && len(r.Data) != 0 {
				t.Fatalf("%.300s %+v", r.Data, r.Errors)
			}
			m := regexp.MustCompile(`complexity (\d+)`).FindStringSubmatch(r.Errors[0].Message)
			got, _ := strconv.Atoi(m[1])
			// Each alias: its components priced as a page, each with its three
			// scalars and its labels (1 + one label's two fields: they come with
			// the component's row).
			if want := 600 * model.MaxLimit * 6; got < want {
				t.Errorf("complexity %d, want at least %d", got, want)
			}
		}
		if least != 0 {
			t.Errorf("the refused operation ran %d statements", least)
		}
		// One summary, labels and all, fits, and answers every component.
		_, r0 := s.GQL(key, `{ status { components { id displayName labels { key value } status } } }`, nil)
		if sum := data[struct{ Components []struct{ ID string } }](t, r0, "status"); len(sum.Components) != components {
			t.Errorf("%d components with labels", len(sum.Components))
		}
		_, r := s.GQL(key, `{ status { components { id displayName status } } }`, nil)
		if sum := data[struct{ Components []struct{ ID string } }](t, r, "status"); len(sum.Components) != components {
			t.Errorf("%d components", len(sum.Components))
		}
	})
}

// TestListSizeArguments: the lists that were unbounded answer their latest
// (or first) 20 by default, the size asked for up to their bound, and refuse
// a size out of range with a ValidationError naming the argument.
func TestListSizeArguments(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		key := s.Key(apitest.Tenant("sizes"), model.ScopeComponentsWrite, model.ScopeIncidentsWrite)
		gql := func(q string, vars map[string]any) apitest.GQLResponse {
			t.Helper()
			_, r := s.GQL(key, q, vars)
			return r
		}
		const n = model.DefaultLimit + 2
		var comps []string
		var affects []map[string]any
		for i := range n {
			c := data[struct{ ID string }](t, gql(`mutation($n: String!) { createComponent(input: {displayName: $n}) { id } }`, map[string]any{"n": fmt.Sprintf("c%02d", i)}), "createComponent")
			comps = append(comps, c.ID)
			affects = append(affects, map[string]any{"reference": c.ID, "type": "imp_major"})
		}
		inc := createGQL(t, s, key, map[string]any{"title": "wide", "severity": "LOW", "occurredAt": "2024-01-01T00:00:00Z", "affects": affects})
		for i := range n {
			gql(`mutation($id: ID!, $d: String!) { addIncidentUpdate(incidentId: $id, input: {displayName: $d}) { order } }`, map[string]any{"id": inc.ID, "d": fmt.Sprint("u", i)})
		}
		for range n - 1 { // n open incidents affect comps[0]
			createGQL(t, s, key, map[string]any{"title": "more", "severity": "LOW", "occurredAt": "2024-01-01T00:00:00Z", "affects": affects[:1]})
		}
		start := time.Now().Add(time.Hour).UTC()
		for i := range n {
			ids := comps[:1]
			if i == 0 {
				ids = comps
			}
			gql(`mutation($in: CreateMaintenanceInput!) { createMaintenance(input: $in) { id } }`, map[string]any{"in": map[string]any{
				"description": fmt.Sprint("w", i), "startsAt": start.Add(time.Duration(i) * time.Minute), "endsAt": start.Add(2 * time.Hour), "components": ids}})
		}

		count := func(r apitest.GQLResponse, path ...string) int {
			t.Helper()
			if len(r.Errors) > 0 {
				t.Fatalf("%+v", r.Errors)
			}
			var v any
			_ = json.Unmarshal(r.Data, &v)
			for _, p := range path {
				if l, ok := v.([]any); ok {
					v = l[0]
				}
				v = v.(map[string]any)[p]
			}
			return len(v.([]any))
		}
		vars := map[string]any{"id": inc.ID, "c": comps[0]}
		for _, c := range []struct {
			query string
			path  []string
			arg   string
			max   int
		}{
			{`query($id: ID!, $n: Int) { incident(id: $id) { updates(last: $n) { displayName } } }`, []string{"incident", "updates"}, "last", model.MaxLimit},
			{`query($id: ID!, $n: Int) { incident(id: $id) { affects(first: $n) { impact } } }`, []string{"incident", "affects"}, "first", model.MaxAffects},
			{`query($c: ID!, $n: Int) { component(id: $c) { activelyAffectedBy(first: $n) { impact } } }`, []string{"component", "activelyAffectedBy"}, "first", model.MaxLimit},
			{`query($n: Int) { maintenance(first: $n) { id } }`, []string{"maintenance"}, "first", model.MaxLimit},
			{`query($n: Int) { maintenance(first: 1) { components(first: $n) { id } } }`, []string{"maintenance", "components"}, "first", model.MaxMaintenanceComponents},
		} {
			if got := count(gql(c.query, vars), c.path...); got != model.DefaultLimit {
				t.Errorf("%s: %d by default, want %d", c.query, got, model.DefaultLimit)
			}
			vars["n"] = n
			if got := count(gql(c.query, vars), c.path...); got < n {
				t.Errorf("%s: %d with %s %d", c.query, got, c.arg, n)
			}
			for _, bad := range []int{0, -1, c.max + 1} {
				vars["n"] = bad
				r := gql(c.query, vars)
				want := fmt.Sprintf("%s must be between 1 and %d", c.arg, c.max)
				if r.Code() != "ValidationError" || !strings.Contains(fmt.Sprint(r.Errors[0].Extensions["details"]), want) {
					t.Errorf("%s with %d: %+v, want %q", c.query, bad, r.Errors, want)
				}
			}
			delete(vars, "n")
		}
		// The latest updates, oldest first; the soonest windows first.
		r := gql(`query($id: ID!) { incident(id: $id) { updates(last: 2) { displayName } } }`, vars)
		if got := data[struct {
			Updates []struct{ DisplayName string }
		}](t, r, "incident").Updates; len(got) != 2 || got[0].DisplayName != fmt.Sprint("u", n-2) || got[1].DisplayName != fmt.Sprint("u", n-1) {
			t.Errorf("latest updates %+v", got)
		}
		r = gql(`{ maintenance(first: 2) { description } }`, nil)
		if got := data[[]struct{ Description string }](t, r, "maintenance"); len(got) != 2 || got[0].Description != "w0" || got[1].Description != "w1" {
			t.Errorf("soonest windows %+v", got)
		}
	})
}
