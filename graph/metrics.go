package graph

import (
	"context"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// OperationObserver is told of each GraphQL operation once: the schema
// field it starts with ("incidents", "createIncident", "incidentChanged";
// "" when it was refused before it was validated), its type (query, mutation, subscription;
// unknown when it was refused before it could be parsed) and whether its
// first response carried errors. Operations refused before they ran (bad
// body, parse and validation errors, depth or complexity limits) count too,
// as failed.
type OperationObserver func(name, typ string, failed bool)

// OperationMetrics is an extension that tells observe of every operation.
// Put it in Config.Extensions: those come before the door's own operation
// middleware (the rate limiter's refusals included), so it sees them all.
func OperationMetrics(observe OperationObserver) graphql.HandlerExtension {
	return operationMetrics{observe}
}

type operationMetrics struct{ observe OperationObserver }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = operationMetrics{}

// dispatchedKey marks the contexts of operations that reached
// InterceptOperation, whose responses it counts.
type dispatchedKey struct{}

func (operationMetrics) ExtensionName() string                   { return "OperationMetrics" }
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation counts an operation when its first response is ready
// (a subscription's first event, or its end).
func (m operationMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	name, typ := operationOf(ctx, true)
	responses := next(context.WithValue(ctx, dispatchedKey{}, true))
	var counted atomic.Bool
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if counted.CompareAndSwap(false, true) {
			m.observe(name, typ, resp != nil && len(resp.Errors) > 0)
		}
		return resp
	}
}

// InterceptResponse counts the operations refused before they were
// dispatched: their one response passes here, and not through
// InterceptOperation.
func (m operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if ctx.Value(dispatchedKey{}) == nil {
		name, typ := operationOf(ctx, false)
		m.observe(name, typ, true)
	}
	return resp
}

// operationOf names the operation in ctx by the first field it selects and
// says its type. Not by the name the client gave it: that is free text a
// tenant chooses (a customer's or an incident's name), which would reach
// whoever reads the metrics, and one tenant could use up the bounded set of
// label values for everyone. A schema field is neither, but only once the
// operation was validated (before, a field may be anything).
func operationOf(ctx context.Context, validated bool) (field, typ string) {
	typ = "unknown"
	if !graphql.HasOperationContext(ctx) {
		return "", typ
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return "", typ
	}
	typ = string(oc.Operation.Operation)
	if !validated {
		return "", typ
	}
	for _, sel := range oc.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			return f.Name, typ
		}
	}
	return "", typ
}
