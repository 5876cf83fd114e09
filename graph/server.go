package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/graph/generated"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// Config is what the GraphQL door needs.
type Config struct {
	Incidents   model.IncidentService
	APIKeys     model.APIKeyService
	Components  model.ComponentService
	Audit       model.AuditLog
	Relations   model.RelationService
	Catalogue   model.CatalogueService
	Ingest      model.IngestService
	Maintenance model.MaintenanceService
	Status      model.StatusService
	Uptime      model.UptimeService
	Settings    model.SettingsService
	Webhooks    model.WebhookService
	Idempotency model.IdempotencyStore
	Events      model.EventLog
	Hub         *live.Hub
	// Public fans published status out (the publicStatus subscription);
	// Version names a status's content, as the REST door's ETag does.
	Public        *live.Public
	Version       func(*model.StatusSummary) string
	Authenticator *auth.Authenticator
	Limiter       *auth.Limiter
	Clock         model.Clock

	// ComplexityLimit rejects operations costlier than this (default 5000;
	// a field costs 1 and a list 1 plus the items it can answer (the size
	// asked for, else its default or its bound: listBounds) times an item's
	// cost, so 100 incidents with every field selected through both edges and
	// nodes cost about 3,100).
	ComplexityLimit int
	// DepthLimit rejects operations nested deeper than this (default 10).
	DepthLimit int
	// Introspection enables __schema/__type queries.
	Introspection bool
	// KeepAlive is the WebSocket ping interval (default 15s).
	KeepAlive time.Duration
	// MaxSubscriptionsPerConn caps one WebSocket's subscriptions (default 20).
	MaxSubscriptionsPerConn int
	// WSOrigins lists extra browser origins allowed to open WebSockets
	// (host patterns, e.g. "dashboard.example.com"); same-origin always works.
	WSOrigins []string
	// Explorer, if set, answers browser GETs (Accept: text/html) of /graphql.
	Explorer http.Handler
	// Extensions (metrics, tracing) run around everything else, so that they
	// see every operation, refused ones included.
	Extensions []graphql.HandlerExtension
}

// MaxBodyBytes bounds a GraphQL request body.
const MaxBodyBytes = 1 << 20

// NewHandler returns the /graphql endpoint: queries and mutations over POST
// and GET, subscriptions over WebSocket (graphql-transport-ws and the legacy
// graphql-ws) and server-sent events.
func NewHandler(cfg Config) http.Handler {
	if cfg.ComplexityLimit <= 0 {
		cfg.ComplexityLimit = 5000
	}
	if cfg.DepthLimit <= 0 {
		cfg.DepthLimit = 10
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSubscriptionsPerConn <= 0 {
		cfg.MaxSubscriptionsPerConn = 20
	}
	if cfg.Clock == nil {
		cfg.Clock = model.SystemClock{}
	}
	res := &Resolver{IncidentService: cfg.Incidents, APIKeyService: cfg.APIKeys, ComponentService: cfg.Components, AuditLog: cfg.Audit, Relations: cfg.Relations, CatalogueService: cfg.Catalogue, IngestService: cfg.Ingest, MaintenanceService: cfg.Maintenance, StatusService: cfg.Status, UptimeService: cfg.Uptime, SettingsService: cfg.Settings, WebhookService: cfg.Webhooks, Idempotency: cfg.Idempotency, EventLog: cfg.Events, Hub: cfg.Hub, Public: cfg.Public, Version: cfg.Version, MaxSubscriptionsPerConn: cfg.MaxSubscriptionsPerConn}
	gc := generated.Config{Resolvers: res}
	// Every list is priced by its bound (cost.go), from one table.
	srv := handler.New(costedSchema{generated.NewExecutableSchema(gc)})
	srv.AddTransport(transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: websocket.AcceptOptions{OriginPatterns: cfg.WSOrigins},
		},
		InitFunc:              wsInit(cfg, res),
		InitTimeout:           10 * time.Second,
		KeepAlivePingInterval: cfg.KeepAlive,
		PingPongInterval:      cfg.KeepAlive,
	})
	srv.AddTransport(transport.SSE{}) // before POST: it claims POSTs that accept text/event-stream
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	for _, e := range cfg.Extensions {
		srv.Use(e)
	}
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	// The shape check runs first: gqlgen's complexity walk re-walks a fragment
	// at every spread, so a small document of nested fragment spreads would
	// otherwise cost exponential time before any limit could reject it.
	srv.Use(streamedSubscriptions{})
	srv.Use(depthLimit(cfg.DepthLimit))
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	// Each operation gets its own batch loaders for the relations.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if cfg.Relations != nil && cfg.Catalogue != nil {
			ctx = withLoaders(ctx, cfg.Relations, cfg.Catalogue)
		}
		return next(ctx)
	})
	// Each operation on an open WebSocket re-checks its credential, so that a
	// key revoked (or a token expired) since the handshake stops working.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if cred, ok := ctx.Value(credKey{}).(string); ok {
			if _, err := cfg.Authenticator.Authenticate(ctx, cred); err != nil {
				return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{toGQLError(ctx, err)}})
			}
		}
		return next(ctx)
	})
	if cfg.Limiter != nil {
		// An operation costs its complexity, as GitHub's GraphQL API counts
		// points: HTTP requests paid 1 in the auth middleware, so they pay the
		// rest here; operations over an open WebSocket pay it all.
		srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
			p := model.PrincipalFrom(ctx)
			if p == nil {
				return next(ctx)
			}
			complexity := 1
			if st := extension.GetComplexityStats(ctx); st != nil {
				complexity = st.Complexity
			}
			cost := OperationCost(complexity)
			onWS := ctx.Value(wsKey{}) != nil
			charge := cost
			if !onWS {
				charge = cost - 1 // the HTTP request paid 1 in the auth middleware
			}
			if charge < 1 {
				ctx = context.WithValue(ctx, costKey{}, map[string]any{"requested": cost, "complexity": complexity})
				return next(ctx)
			}
			u, err := cfg.Limiter.Charge(ctx, p.Budget(), p.Tier, charge)
			if err != nil {
				return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{toGQLError(ctx, model.Internal(err, "rate limiter"))}})
			}
			if h := auth.ResponseHeader(ctx); h != nil {
				auth.SetHeaders(h, u)
			}
			info := map[string]any{"requested": cost, "complexity": complexity, "remaining": u.Remaining, "resetAt": u.Reset}
			if u.Reached {
				if flag, ok := ctx.Value(limitedKey{}).(*atomic.Bool); ok {
					flag.Store(true) // the HTTP answer becomes 429
				}
				return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{toGQLError(ctx, auth.RateLimited(u))},
					Extensions: map[string]any{"cost": info}})
			}
			ctx = context.WithValue(ctx, costKey{}, info)
			return next(ctx)
		})
		srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
			resp := next(ctx)
			if c, ok := ctx.Value(costKey{}).(map[string]any); ok && resp != nil {
				if resp.Extensions == nil {
					resp.Extensions = map[string]any{}
				}
				resp.Extensions["cost"] = c
			}
			return resp
		})
	}

	authed := auth.Middleware(cfg.Authenticator, cfg.Limiter, writeHTTPError)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > MaxBodyBytes {
				writeStatus(w, r, http.StatusRequestEntityTooLarge, errBodyTooLarge)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				// Read here, not by gqlgen, so that a body with no length
				// (chunked) that runs past the bound is a 413 too: gqlgen
				// answers a failed read with 200.
				body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
				switch {
				case err != nil:
					writeStatus(w, r, http.StatusBadRequest, model.Invalid("could not read the request body"))
					return
				case len(body) > MaxBodyBytes:
					writeStatus(w, r, http.StatusRequestEntityTooLarge, errBodyTooLarge)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			limited := &atomic.Bool{}
			ctx := context.WithValue(r.Context(), limitedKey{}, limited)
			if r.Method == http.MethodPost && !(transport.SSE{}).Supports(r) {
				ctx = context.WithValue(ctx, plainPOSTKey{}, true)
			}
			srv.ServeHTTP(&limitedWriter{ResponseWriter: w, limited: limited}, r.WithContext(ctx))
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			// Credentials come in connection_init; keep the client IP for its rate limit.
			srv.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, auth.ClientIP(r))))
		case cfg.Explorer != nil && r.Method == http.MethodGet && r.URL.RawQuery == "" &&
			strings.Contains(r.Header.Get("Accept"), "text/html"):
			cfg.Explorer.ServeHTTP(w, r)
		default:
			authed.ServeHTTP(w, r)
		}
	})
}

var errBodyTooLarge = model.Invalid("request body exceeds 1 MiB")

// writeHTTPError answers an HTTP-level failure (authentication, rate limit)
// in GraphQL's response shape.
func writeHTTPError(w http.ResponseWriter, r *http.Request, err error) {
	status := map[model.Code]int{
		model.CodeUnauthorized: http.StatusUnauthorized, model.CodeForbidden: http.StatusForbidden,
		model.CodeRateLimited: http.StatusTooManyRequests,
	}[model.ErrorCode(err)]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeStatus(w, r, status, err)
}

// writeStatus answers err with status, in GraphQL's response shape.
func writeStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{toGQLError(r.Context(), err)}})
}

// connState tracks one WebSocket's subscriptions.
type connState struct {
	subs atomic.Int32
	max  int32
}

type connKey struct{}

type remoteKey struct{}

type costKey struct{}

// limitedKey marks an HTTP request whose operation was refused by the rate
// limiter, so that the answer carries status 429 like REST's.
type limitedKey struct{}

type limitedWriter struct {
	http.ResponseWriter
	limited     *atomic.Bool
	wroteHeader bool
}

func (w *limitedWriter) WriteHeader(code int) {
	if !w.wroteHeader && w.limited.Load() && code == http.StatusOK {
		code = http.StatusTooManyRequests
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *limitedWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *limitedWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *limitedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// CostDivisor turns complexity into rate-limit points, as GitHub's GraphQL
// API does: an operation costs ceil(complexity / 100), at least 1.
const CostDivisor = 100

// OperationCost is the rate-limit cost of an operation of this complexity.
func OperationCost(complexity int) int64 {
	return max(1, int64((complexity+CostDivisor-1)/CostDivisor))
}

// credKey keeps a WebSocket's credential, so that each operation on it is
// checked again: a key revoked (or a token expired) since the handshake
// stops working on open sockets too.
type credKey struct{}

// wsInit authenticates connection_init: the payload carries the same
// credentials as HTTP headers (X-API-Key, API-Key, Authorization), at the top
// level or under "headers" (as GraphiQL sends them).
func wsInit(cfg Config, res *Resolver) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		h := http.Header{}
		add := func(m map[string]any) {
			for k, v := range m {
				if s, ok := v.(string); ok {
					h.Set(k, s)
				}
			}
		}
		add(payload)
		if nested, ok := payload["headers"].(map[string]any); ok {
			add(nested)
		}
		if v, ok := payload["apiKey"].(string); ok {
			h.Set("X-API-Key", v)
		}
		cred, _ := auth.Credential(h)
		p, err := cfg.Authenticator.Authenticate(ctx, cred)
		if err != nil {
			// Failed handshakes spend the client IP's budget, as failed HTTP requests do.
			if cfg.Limiter != nil {
				ip, _ := ctx.Value(remoteKey{}).(string)
				if u, lerr := cfg.Limiter.Charge(ctx, "ip:"+ip, auth.DefaultTier, 1); lerr == nil && u.Reached {
					return transport.WithWebsocketCloseCode(ctx, 4429), nil, errors.New("rate limit exceeded")
				}
			}
			// Only the domain message reaches the client, never a cause.
			return transport.WithWebsocketCloseCode(ctx, 4403), nil, errors.New(toGQLError(ctx, err).Message)
		}
		if cfg.Limiter != nil {
			u, err := cfg.Limiter.Charge(ctx, p.Budget(), p.Tier, 1)
			if err == nil && u.Reached {
				return transport.WithWebsocketCloseCode(ctx, 4429), nil, fmt.Errorf("rate limit of %s exceeded", u.Describe)
			}
		}
		ctx = model.WithPrincipal(ctx, p)
		ctx = context.WithValue(ctx, wsKey{}, true)
		ctx = context.WithValue(ctx, credKey{}, cred)
		ctx = context.WithValue(ctx, connKey{}, &connState{max: int32(res.MaxSubscriptionsPerConn)})
		return ctx, nil, nil
	}
}

// claimSubscription takes one of the connection's subscription slots.
func (r *Resolver) claimSubscription(ctx context.Context) (release func(), err error) {
	st, ok := ctx.Value(connKey{}).(*connState)
	if !ok {
		return func() {}, nil // SSE: one subscription per request
	}
	if st.subs.Add(1) > st.max {
		st.subs.Add(-1)
		return nil, &model.Error{Code: model.CodeRateLimited,
			Message: fmt.Sprintf("this connection already has %d subscriptions, the maximum", st.max)}
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			st.subs.Add(-1)
		}
	}, nil
}

// plainPOSTKey marks a POST that gqlgen's POST transport answers: one JSON
// response, no stream (SSE claims the POSTs that accept text/event-stream).
type plainPOSTKey struct{}

// streamedSubscriptions refuses a subscription sent as a plain POST before it
// runs: the POST transport would wait for its first event to send as the
// whole answer, holding the request until the tenant's next change. GET
// refuses non-queries itself (406).
type streamedSubscriptions struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = streamedSubscriptions{}

func (streamedSubscriptions) ExtensionName() string                   { return "StreamedSubscriptions" }
func (streamedSubscriptions) Validate(graphql.ExecutableSchema) error { return nil }

func (streamedSubscriptions) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil || rc.Operation.Operation != ast.Subscription || ctx.Value(plainPOSTKey{}) == nil {
		return nil
	}
	return &gqlerror.Error{
		Message: "subscriptions need a stream: open a WebSocket (graphql-transport-ws) to /graphql, " +
			"or POST with Accept: text/event-stream for server-sent events",
		Extensions: map[string]any{"code": "SUBSCRIPTION_NEEDS_STREAM"},
	}
}

// depthLimit rejects operations whose selections nest deeper than max.
type depthLimit int

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit(0)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	w := shapeWalker{memo: map[string]shape{}}
	sh := w.walk(rc.Operation.SelectionSet)
	if sh.fields > MaxExpandedFields {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("operation expands to more than %d fields", MaxExpandedFields),
			Extensions: map[string]any{"code": "QUERY_TOO_LARGE"},
		}
	}
	if sh.depth > int(d) {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("operation is nested %d levels deep, more than the limit of %d", sh.depth, int(d)),
			Extensions: map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"},
		}
	}
	return nil
}

// MaxExpandedFields bounds an operation's field count with fragments expanded.
const MaxExpandedFields = 10_000

type shape struct{ depth, fields int }

// shapeWalker measures depth and expanded size, remembering each fragment's
// shape: without the memo, fragments that spread others twice cost
// exponential time. Sizes saturate at the limit.
type shapeWalker struct{ memo map[string]shape }

func (w shapeWalker) walk(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var sh shape
		switch s := sel.(type) {
		case *ast.Field:
			sh = shape{1, 1}
			if len(s.SelectionSet) > 0 {
				in := w.walk(s.SelectionSet)
				sh = shape{1 + in.depth, 1 + in.fields}
			}
		case *ast.InlineFragment:
			sh = w.walk(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			cached, ok := w.memo[s.Name]
			if !ok {
				w.memo[s.Name] = shape{} // validation rejects cycles; this only guards the walk
				cached = w.walk(s.Definition.SelectionSet)
				w.memo[s.Name] = cached
			}
			sh = cached
		}
		out.depth = max(out.depth, sh.depth)
		out.fields = min(out.fields+sh.fields, MaxExpandedFields+1)
	}
	return out
}
