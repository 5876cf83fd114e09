package graph

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/incidentd/incidentd/graph/generated"
)

// TestEveryListIsBounded walks the schema: every list-typed output field has a
// bound in listBounds (a list field added without one fails here), every
// entry names a field that exists, and each field's cost is its size times
// its items' cost.
func TestEveryListIsBounded(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	es := costedSchema{generated.NewExecutableSchema(generated.Config{})}
	seen := map[string]bool{}
	for _, typ := range schema.Types {
		if typ.Kind != ast.Object || strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, f := range typ.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			key := typ.Name + "." + f.Name
			b, ok := listBounds[key]
			if f.Type.Elem != nil && !ok {
				t.Errorf("list field %s has no bound in listBounds", key)
				continue
			}
			if !ok {
				continue
			}
			seen[key] = true
			t.Run(key, func(t *testing.T) { checkBound(t, es, typ.Name, f, b) })
		}
	}
	for key := range listBounds {
		if !seen[key] {
			t.Errorf("listBounds names %s, which the schema does not have", key)
		}
	}
}

func checkBound(t *testing.T, es costedSchema, typeName string, f *ast.FieldDefinition, b listBound) {
	if b.max < 1 || b.def > b.max {
		t.Fatalf("bound %+v", b)
	}
	if f.Type.Elem == nil && len(b.args) == 0 {
		t.Errorf("%s is not a list and asks for no size", f.Name)
	}
	const child = 7
	cost := func(args map[string]any) int {
		n, ok := es.Complexity(context.Background(), typeName, f.Name, child, args)
		if !ok {
			t.Fatal("no complexity")
		}
		return n
	}
	if b.paged || b.embedded {
		// Priced by the field that pages it, or with its parent's row.
		if got := cost(nil); got != 1+child {
			t.Errorf("paged or embedded list costs %d, want %d", got, 1+child)
		}
		if b.embedded && (b.max > 32 || len(b.args) > 0) {
			t.Errorf("embedded list of up to %d items (args %v): only short lists read with their row may be priced as one item", b.max, b.args)
		}
		return
	}
	def := b.def
	if def == 0 {
		def = min(b.max, pricedPage)
	}
	if got := cost(nil); got != 1+def*child {
		t.Errorf("cost %d without arguments, want 1 + %d × %d", got, def, child)
	}
	for _, a := range b.args {
		arg := f.Arguments.ForName(a)
		if arg != nil && arg.Type.Elem != nil && arg.Type.NonNull {
			// A list of what to answer: one item each, up to the bound.
			for n, want := range map[int]int{3: 3, b.max + 5: b.max} {
				if got := cost(map[string]any{a: make([]any, n)}); got != 1+want*child {
					t.Errorf("%s: %d ids cost %d, want 1 + %d × %d", a, n, got, want, child)
				}
			}
			continue
		}
		if arg == nil || arg.Type.Name() != "Int" || arg.Type.NonNull {
			t.Fatalf("size argument %s: %+v", a, arg)
		}
		// A literal (int64), a JSON variable (json.Number), past the bound (priced at it).
		for v, want := range map[any]int{int64(3): 3, json.Number(strconv.Itoa(b.max)): b.max, int64(b.max + 1000): b.max} {
			if got := cost(map[string]any{a: v}); got != 1+want*child {
				t.Errorf("%s: %v costs %d, want 1 + %d × %d", a, v, got, want, child)
			}
		}
	}
	// A list field with a size argument documents its default and its range.
	if f.Type.Elem != nil && len(b.args) > 0 {
		for _, n := range []int{b.def, b.max} {
			if !strings.Contains(f.Description, strconv.Itoa(n)) {
				t.Errorf("description %q does not say %d", f.Description, n)
			}
		}
	}
	if got := satAdd(1, satMul(1<<62, child)); got < 1<<62 {
		t.Errorf("cost overflowed: %d", got)
	}
}
