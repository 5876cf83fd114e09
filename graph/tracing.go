package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is an extension that gives each operation a span ("query
// IncidentList"), child of the request's, and each resolver call within it
// a span of its own ("Query.incidents"); trivial fields (struct reads) get
// none. A subscription's span lasts until its stream ends.
func Tracing(tp trace.TracerProvider) graphql.HandlerExtension {
	return tracing{tp.Tracer("github.com/incidentd/incidentd/graph")}
}

type tracing struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.FieldInterceptor
} = tracing{}

func (tracing) ExtensionName() string                   { return "Tracing" }
func (tracing) Validate(graphql.ExecutableSchema) error { return nil }

func (t tracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	name, typ := clientOperation(ctx)
	spanName := typ
	if name != "" {
		spanName += " " + name
	}
	ctx, span := t.tracer.Start(ctx, spanName, trace.WithAttributes(
		semconv.GraphQLOperationTypeKey.String(typ), semconv.GraphQLOperationName(name)))
	responses := next(ctx)
	ended := false
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if ended {
			return resp
		}
		if resp != nil && len(resp.Errors) > 0 {
			span.SetStatus(codes.Error, resp.Errors[0].Message)
		}
		// Queries and mutations resolve while their one response is made;
		// a subscription's events resolve in its span until it ends.
		if typ != "subscription" || resp == nil {
			span.End()
			ended = true
		}
		return resp
	}
}

func (t tracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver || !trace.SpanFromContext(ctx).IsRecording() {
		return next(ctx)
	}
	ctx, span := t.tracer.Start(ctx, fc.Object+"."+fc.Field.Name,
		trace.WithAttributes(attribute.String("graphql.field.path", fc.Path().String())))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return res, err
}

// clientOperation is the operation's name as the client gave it and its
// type: what the GraphQL span conventions name a span by (traces go to the
// operator's collector with each request's own attributes; metrics, which
// aggregate across tenants, use operationOf instead).
func clientOperation(ctx context.Context) (name, typ string) {
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
