package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/incidentd/incidentd/graph/generated"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
)

// hostileScalars are values no row holds and no parser should take, per
// argument type.
var hostileScalars = map[string][]any{
	"ID":       {"\x00", "a\x00b", "\xff", "a\xffb", "\uFFFD", "../x", "a/b", strings.Repeat("x", 5000), "99999999999999999999", "-1", "evt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	"String":   {"\x00", "\xff", "%", "_", strings.Repeat("é", 10000)},
	"Int":      {-1, 0, 2147483647, -2147483648},
	"DateTime": {"0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "\x00"},
}

// TestHostileArguments calls every query and mutation with hostile values in
// each scalar argument (ids first of all), one at a time, on both stores:
// each is answered with data or a coded error, never an internal one.
func TestHostileArguments(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		ten := apitest.Tenant("hostile")
		key := s.Key(ten, model.ScopeIncidentsWrite, model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead)
		s.Do("POST", "/v1/incidents", key, map[string]any{"title": "t", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
		n := 0
		codes := map[string]int{}
		for _, root := range []*ast.Definition{schema.Query, schema.Mutation} {
			for _, f := range root.Fields {
				if strings.HasPrefix(f.Name, "__") {
					continue
				}
				for _, target := range f.Arguments {
					values, ok := hostileScalars[target.Type.Name()]
					if !ok || target.Type.Elem != nil {
						continue
					}
					for _, v := range values {
						op, vars := operation(schema, root, f, target.Name, v)
						n++
						status, res := s.GQL(key, op, vars)
						if status >= 500 {
							t.Errorf("%s(%s: %q): HTTP %d", f.Name, target.Name, v, status)
						}
						if len(res.Errors) == 0 {
							codes["data"]++
						}
						for _, e := range res.Errors {
							c, _ := e.Extensions["code"].(string)
							codes[c]++
							if c == "" || c == "InternalError" || c == "GRAPHQL_VALIDATION_FAILED" || c == "GRAPHQL_PARSE_FAILED" {
								t.Errorf("%s(%s: %.40q): %s %v", f.Name, target.Name, v, e.Message, e.Extensions)
							}
						}
					}
				}
			}
		}
		t.Logf("%d hostile operations; answers by code: %v", n, codes)
		if n < 100 {
			t.Errorf("only %d operations: the schema was not walked", n)
		}
	})
}

// operation builds an operation calling f with the hostile value in
// argument target (a variable) and plausible values in its other required
// arguments, so that the hostile one is what gets looked at.
func operation(schema *ast.Schema, root *ast.Definition, f *ast.FieldDefinition, target string, v any) (string, map[string]any) {
	kind := "query"
	if root == schema.Mutation {
		kind = "mutation"
	}
	var decl string
	var args []string
	vars := map[string]any{}
	for _, a := range f.Arguments {
		switch {
		case a.Name == target:
			decl = fmt.Sprintf("($v: %s)", a.Type.String())
			args = append(args, a.Name+": $v")
			vars["v"] = v
		case a.Type.NonNull:
			args = append(args, a.Name+": "+plausible(schema, a.Type, 0))
		}
	}
	call := f.Name
	if len(args) > 0 {
		call += "(" + strings.Join(args, ", ") + ")"
	}
	if def := schema.Types[f.Type.Name()]; def != nil && (def.Kind == ast.Object || def.Kind == ast.Interface || def.Kind == ast.Union) {
		call += " { __typename }"
	}
	return fmt.Sprintf("%s %s { %s }", kind, decl, call), vars
}

// plausible writes a literal of type t that validates: required input
// fields filled, lists empty.
func plausible(schema *ast.Schema, t *ast.Type, depth int) string {
	if t.Elem != nil {
		return "[]"
	}
	switch t.Name() {
	case "ID", "String":
		return `"x"`
	case "Int":
		return "1"
	case "Float":
		return "1.0"
	case "Boolean":
		return "true"
	case "DateTime", "Time":
		return `"2024-01-01T00:00:00Z"`
	}
	def := schema.Types[t.Name()]
	switch {
	case def == nil:
		return `"x"`
	case def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def.Kind == ast.InputObject && depth < 4:
		var fields []string
		for _, f := range def.Fields {
			if f.Type.NonNull {
				fields = append(fields, f.Name+": "+plausible(schema, f.Type, depth+1))
			}
		}
		return "{" + strings.Join(fields, ", ") + "}"
	}
	return `"x"`
}
