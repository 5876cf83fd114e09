// Package server wires the store, the live hub and both doors into one
// http.Handler. The command and the tests build the server the same way.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/trace"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/graph/graphiql"
	"github.com/incidentd/incidentd/internal/metrics"
	"github.com/incidentd/incidentd/internal/telemetry"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
	"github.com/incidentd/incidentd/store"
	"github.com/incidentd/incidentd/web"
	"github.com/incidentd/incidentd/webhook"
)

// Config tunes the server; zero values mean the documented defaults.
type Config struct {
	RateLimit   string                 // the default tier's rate, ulule notation, default 200-M
	RateTiers   string                 // name=RATE[:BURST],... added to the built-in tiers
	RateStore   auth.Store             // default: in memory
	KeyCacheTTL time.Duration          // 0: no cache
	OIDC        *auth.OIDC             // bearer JWTs, if configured
	Monitoring  *auth.MonitoringConfig // the monitoring contract's shared-secret token, if configured
	Clock       model.Clock
	Logger      *slog.Logger

	GraphQL graph.Config // services and auth are filled in here
	Live    live.Options
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client (per-address limits, logs).
	TrustedProxies []netip.Prefix
	// Webhooks tunes the outgoing webhooks' engine.
	Webhooks webhook.Options
	// Public bounds the anonymous viewers of published status.
	Public live.PublicOptions
	// EventRetention bounds how long events stay replayable (default 24h).
	EventRetention time.Duration
	// CORSOrigins are the browser origins allowed to call the API ("*": any).
	CORSOrigins []string
	// Explorer serves GraphiQL at GET /graphql for browsers (assets embedded).
	Explorer bool
	// MetricsToken, if set, is the bearer token a scrape of /metrics must send.
	MetricsToken string
	// MetricsSeparate keeps /metrics off Handler: the command serves
	// Server.Metrics on an address of its own.
	MetricsSeparate bool
	// Tracer, if set, traces requests and GraphQL operations and puts trace
	// ids in log lines (database spans come from store.Options.Tracer).
	Tracer trace.TracerProvider
}

const explorerAssets = "/graphiql/assets/"

// Server is a running set of doors over one store.
type Server struct {
	Handler http.Handler
	Hub     *live.Hub
	Public  *live.Public
	Store   *store.Store
	// Metrics serves the Prometheus scrape (also at /metrics on Handler
	// unless Config.MetricsSeparate).
	Metrics http.Handler

	cancel context.CancelFunc
	wg     sync.WaitGroup
	authn  *auth.Authenticator
}

// New wires everything and starts the event watcher and the retention janitor.
func New(st *store.Store, cfg Config) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = model.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RateLimit == "" {
		cfg.RateLimit = auth.DefaultRate
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = 24 * time.Hour
	}
	tiers, err := auth.ParseTiers(auth.BuiltinTiers+",default="+cfg.RateLimit+","+cfg.RateTiers, nil)
	if err != nil {
		return nil, err
	}
	if cfg.RateStore == nil {
		cfg.RateStore = auth.NewMemoryStore()
	}
	lim := auth.NewLimiter(cfg.RateStore, tiers)
	if cfg.Tracer != nil {
		cfg.Logger = slog.New(telemetry.LogHandler(cfg.Logger.Handler()))
	}
	authn := &auth.Authenticator{Keys: st.APIKeys(), Clock: cfg.Clock, CacheTTL: cfg.KeyCacheTTL, OIDC: cfg.OIDC}
	hub := live.New(cfg.Live)
	if cfg.Webhooks.Clock == nil {
		cfg.Webhooks.Clock = cfg.Clock
	}
	hooks := webhook.New(st, cfg.Webhooks)
	pub := live.NewPublic(hub, st.Status().PublicSummary, rest.PublicVersion, cfg.Public)
	st.OnPublication(pub.Changed)
	m := observe(st, hub, lim)
	gq := cfg.GraphQL
	exts := []graphql.HandlerExtension{graph.OperationMetrics(m.GraphQLOperation)}
	if cfg.Tracer != nil {
		exts = append(exts, graph.Tracing(cfg.Tracer))
	}
	gq.Extensions = append(exts, gq.Extensions...)
	gq.Incidents, gq.APIKeys, gq.Components, gq.Audit, gq.Events, gq.Hub = st.Incidents(), st.KeyAdmin(), st.Components(), st.Audit(), st.Events(), hub
	gq.Relations, gq.Ingest, gq.Maintenance, gq.Status, gq.Catalogue = st.Relations(), st.Ingest(), st.Maintenance(), st.Status(), st.Catalogue()
	gq.Authenticator, gq.Limiter, gq.Clock = authn, lim, cfg.Clock
	gq.Public, gq.Version, gq.Uptime, gq.Settings, gq.Idempotency = pub, rest.PublicVersion, st.Uptime(), st.Settings(), st.Idempotency()
	gq.Webhooks = hooks.Service()
	mounts := map[string]http.Handler{}
	mounts["/graphql/public"] = graph.NewPublicHandler(gq)
	mounts["/widget.js"] = web.Widget()
	mounts["/status/{tenant}"] = web.StatusPage(st.Status(), st.Uptime(), lim, cfg.Clock, cfg.Logger)
	if cfg.Explorer {
		gq.Explorer = graphiql.Handler("incidentd GraphQL", "/graphql", explorerAssets)
		mounts[explorerAssets+"*"] = http.StripPrefix(explorerAssets, graphiql.Assets())
	}
	scrape := m.Handler(cfg.MetricsToken)
	if !cfg.MetricsSeparate {
		mounts["/metrics"] = scrape
	}
	router := rest.NewRouter(rest.Deps{
		Incidents:               st.Incidents(),
		APIKeys:                 st.KeyAdmin(),
		Components:              st.Components(),
		Ingest:                  st.Ingest(),
		Maintenance:             st.Maintenance(),
		Status:                  st.Status(),
		Relations:               st.Relations(),
		Catalogue:               st.Catalogue(),
		Audit:                   st.Audit(),
		Events:                  st.Events(),
		Hub:                     hub,
		Public:                  pub,
		Uptime:                  st.Uptime(),
		Settings:                st.Settings(),
		Webhooks:                hooks.Service(),
		Idempotency:             st.Idempotency(),
		Authenticator:           authn,
		MonitoringAuthenticator: authn.ForMonitoring(cfg.Monitoring),
		Limiter:                 lim,
		Clock:                   cfg.Clock,
		Logger:                  cfg.Logger,
		Ready:                   st.Ping,
		GraphQL:                 graph.NewHandler(gq),
		Mounts:                  mounts,
		CORSOrigins:             cfg.CORSOrigins,
	})
	// Outside the router: metrics time each request by the route template
	// chi found, and name its span (started outermost) after it.
	h := m.Middleware(auth.BehindProxies(cfg.TrustedProxies)(router), func(r *http.Request, route string) {
		if route != metrics.Unmatched {
			telemetry.NameSpan(r, route)
		}
	})
	if cfg.Tracer != nil {
		h = telemetry.Middleware(cfg.Tracer, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The watcher starts at the stream's current end before New returns;
	// clients that want earlier events resume with an event id.
	watcher, err := st.NewWatcher(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	// A changed key is forgotten by the key cache, and a revoked one's
	// streams end: at once on the instance that changed it, through the
	// watcher on the others.
	keyChanged := func(note string) {
		kind, prefix, _ := strings.Cut(note, ":")
		authn.Forget(prefix)
		if kind+":" == store.KeyRevoked {
			hub.EndCredential(prefix)
		}
	}
	st.OnKeyChange(keyChanged)
	s := &Server{Handler: h, Hub: hub, Public: pub, Store: st, Metrics: scrape, cancel: cancel, authn: authn}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		hooks.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		watcher.Run(ctx, func(evs []*model.Event) {
			// Timed as the hub hands them out (observed first, so that a
			// subscriber that has an event can also see it counted).
			m.Delivered(cfg.Clock.Now(), evs)
			hub.Publish(evs)
			hooks.Wake()
		}, keyChanged)
	}()
	go func() {
		defer s.wg.Done()
		prune := func() {
			if n, err := st.PruneEvents(ctx, cfg.Clock.Now().Add(-cfg.EventRetention)); err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("prune events", "err", err)
			} else if n > 0 {
				cfg.Logger.Info("pruned events", "count", n)
			}
			if _, err := st.PruneIdempotency(ctx); err != nil && ctx.Err() == nil {
				cfg.Logger.Warn("prune idempotency keys", "err", err)
			}
		}
		prune()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				prune()
			}
		}
	}()
	return s, nil
}

// Close ends every subscription (clients are told the server is shutting
// down) and stops the background work. Call it before http.Server.Shutdown,
// so that streaming requests finish and Shutdown does not wait for them.
func (s *Server) Close() {
	s.Public.Close()
	s.Hub.Close()
	// Let every live client be told why its stream ended before the
	// connections close; a client that will not read is not waited for long.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Hub.Wait(ctx); err != nil {
		slog.Warn("closing", "err", err)
	}
	s.cancel()
	s.wg.Wait()
	s.authn.Close()
}

// observe makes the server's metrics and hooks them to what they count: the
// hub's subscriptions, the store's pool and ingestion decisions, the
// limiter's refusals.
func observe(st *store.Store, hub *live.Hub, lim *auth.Limiter) *metrics.Metrics {
	m := metrics.New()
	m.WatchSubscribers(hub.Count)
	m.WatchPool(metrics.PoolSource{PG: st.PoolStat, SQL: st.DBStats})
	lim.OnRefusal(m.RateLimitRefused)
	// A store serves one server's decisions: the last server built over it.
	st.OnIngestDecision(m.IngestDecision)
	return m
}
