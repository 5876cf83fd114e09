package graph

import (
	"context"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
)

// OperationObserver is told of each GraphQL operation once: the name the
// client gave it ("" for none), its type (query, mutation, subscription;
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
	name, typ := operationOf(ctx)
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
		name, typ := operationOf(ctx)
		m.observe(name, typ, true)
	}
	return resp
}

// operationOf names the operation in ctx and says its type.
func operationOf(ctx context.Context) (name, typ string) {
	typ = "unknown"
	if !graphql.HasOperationContext(ctx) {
		return "", typ
	}
	oc := graphql.GetOperationContext(ctx)
	name = oc.OperationName
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	return name, typ
}
