package telemetry

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// PgxTracer returns a pgx tracer that records each query, and each batch
// (one round trip) with its statements as events, as a child span of the
// span in its context. Statements without a sampled parent (the event
// watcher's polls, the janitor) make no span: they would be a trace each.
// Statement texts are recorded whole: every value travels as a bind
// parameter, never in the text.
func PgxTracer(tp trace.TracerProvider) pgx.QueryTracer {
	return pgxTracer{tp.Tracer("github.com/incidentd/incidentd/store")}
}

type pgxTracer struct{ tracer trace.Tracer }

var _ interface {
	pgx.QueryTracer
	pgx.BatchTracer
} = pgxTracer{}

var dbSystem = semconv.DBSystemNamePostgreSQL

// start begins a client span under the sampled span in ctx, if there is
// one, and marks the context so that the matching end ends it.
func (t pgxTracer) start(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	ctx, _ = t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, dbSystem)...))
	return context.WithValue(ctx, startedKey{}, true)
}

type startedKey struct{}

// end ends the span start began; a context without one is left alone (its
// span is the caller's).
func end(ctx context.Context, err error) {
	if ctx.Value(startedKey{}) == nil {
		return
	}
	span := trace.SpanFromContext(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (t pgxTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, operation(d.SQL), semconv.DBQueryText(d.SQL))
}

func (pgxTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	end(ctx, d.Err)
}

func (t pgxTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	n := 0
	if d.Batch != nil {
		n = d.Batch.Len()
	}
	return t.start(ctx, "BATCH", semconv.DBOperationBatchSize(n))
}

func (pgxTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if ctx.Value(startedKey{}) == nil {
		return
	}
	attrs := []attribute.KeyValue{semconv.DBQueryText(d.SQL)}
	if d.Err != nil {
		attrs = append(attrs, attribute.String("error", d.Err.Error()))
	}
	trace.SpanFromContext(ctx).AddEvent("statement", trace.WithAttributes(attrs...))
}

func (pgxTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	end(ctx, d.Err)
}

// operation is a statement's first keyword (SELECT, INSERT, WITH, ...), a
// low-cardinality span name.
func operation(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexAny(sql, " \t\n("); i > 0 {
		sql = sql[:i]
	}
	if sql == "" || len(sql) > 16 {
		return "QUERY"
	}
	return strings.ToUpper(sql)
}
