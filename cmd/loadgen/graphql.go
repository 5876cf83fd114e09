package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// graphqlPath is the GraphQL door, for POST queries and WebSocket
// subscriptions alike.
const graphqlPath = "/graphql"

// incidentFields selects every field of an Incident, so gql-get and gql-list
// return what their REST twins return.
const incidentFields = "id title description severity status service tags occurredAt resolvedAt " +
	"createdAt updatedAt createdBy updatedBy isDeleted"

var (
	gqlGetQuery  = "query Incident($id: ID!) { incident(id: $id) { " + incidentFields + " } }"
	gqlListQuery = "query Incidents { incidents(first: " + strconv.Itoa(listLimit) + ") { totalCount " +
		"pageInfo { hasNextPage endCursor } nodes { " + incidentFields + " } } }"
	// The list query never changes, so its body is marshalled once.
	gqlListBody = mustJSON(gqlBody{Query: gqlListQuery})
)

// gqlBody is a GraphQL-over-HTTP request.
type gqlBody struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on strings and maps of strings
	}
	return b
}

func (fx *fixtures) gqlGet(rng *rand.Rand, _ int) request {
	body := mustJSON(gqlBody{Query: gqlGetQuery, Variables: map[string]any{"id": pick(rng, fx.ids)}})
	return request{method: http.MethodPost, path: graphqlPath, body: body}
}

func (fx *fixtures) gqlList(*rand.Rand, int) request {
	return request{method: http.MethodPost, path: graphqlPath, body: gqlListBody}
}

// judgeGraphQL judges a GraphQL answer: by its status, then by its body.
func judgeGraphQL(job int, res *vegeta.Result) (int, string, string) {
	row, kind, detail := judgeStatus(job, res)
	if kind == "" {
		if e := graphQLError(res.Body); e != "" {
			return row, "graphql", e
		}
	}
	return row, kind, detail
}

// graphQLError inspects a 2xx GraphQL response and returns why it counts as
// failed, or "" when it does not: a non-empty "errors" array, or a body that
// holds neither data nor errors. It runs on every response of the hot loop,
// so the full decode happens only when the cheap scan finds an "errors" key
// (inside JSON strings a quote is escaped, so a bare `"errors"` is a key or a
// whole string value, never part of a longer string).
func graphQLError(body []byte) string {
	if !bytes.Contains(body, []byte(`"errors"`)) {
		if !bytes.Contains(body, []byte(`"data"`)) {
			return "response holds neither data nor errors: " + preview(body)
		}
		return ""
	}
	var resp struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return "undecodable response (" + err.Error() + "): " + preview(body)
	}
	switch n := len(resp.Errors); n {
	case 0:
		return ""
	case 1:
		return strconv.Quote(resp.Errors[0].Message)
	default:
		return fmt.Sprintf("%q (and %d more)", resp.Errors[0].Message, n-1)
	}
}

// twins pairs each GraphQL scenario with its REST counterpart, in print order.
var twins = []struct{ label, rest, gql string }{
	{"get", "get", "gql-get"},
	{"list", "list", "gql-list"},
}

// ratio is one GraphQL/REST cost comparison: REST throughput over GraphQL
// throughput, so above 1 means GraphQL is slower. Valid is false when the
// GraphQL scenario completed nothing.
type ratio struct {
	Label string
	Value float64
	Valid bool
}

// costRatios compares each pair of twins that both ran.
func costRatios(results map[string]result) []ratio {
	var out []ratio
	for _, t := range twins {
		rest, ok1 := results[t.rest]
		gql, ok2 := results[t.gql]
		if !ok1 || !ok2 {
			continue
		}
		r := ratio{Label: t.label}
		if gql.Throughput > 0 {
			r.Value, r.Valid = rest.Throughput/gql.Throughput, true
		}
		out = append(out, r)
	}
	return out
}

// formatRatios renders the ratio line of the table output, e.g.
// "graphql/rest cost ratio: get 1.12x, list 1.48x", or "" for no pairs.
func formatRatios(rs []ratio) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		v := "n/a"
		if r.Valid {
			v = strconv.FormatFloat(r.Value, 'f', 2, 64) + "x"
		}
		parts[i] = r.Label + " " + v
	}
	return "graphql/rest cost ratio: " + strings.Join(parts, ", ")
}

// printRatios writes the ratio line after the table or, with -json, one
// object {"graphqlRestCostRatio": {"get": 1.12, "list": 1.48}} (null where
// the GraphQL twin completed nothing) after the result lines.
func (p *printer) printRatios(rs []ratio) {
	if len(rs) == 0 {
		return
	}
	if !p.json {
		fmt.Fprintln(p.w, formatRatios(rs))
		return
	}
	m := map[string]*float64{}
	for _, r := range rs {
		if r.Valid {
			m[r.Label] = &r.Value
		} else {
			m[r.Label] = nil
		}
	}
	fmt.Fprintf(p.w, "%s\n", mustJSON(map[string]any{"graphqlRestCostRatio": m}))
}
