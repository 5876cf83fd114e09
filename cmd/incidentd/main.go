// Command incidentd runs the incident and status platform.
//
//	incidentd [serve]            run the server (applies migrations first)
//	incidentd migrate            apply migrations and exit
//	incidentd apikey create ...  issue an API key and print it once
//
// Every flag has an environment variable; the README lists them all.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/internal/server"
	"github.com/incidentd/incidentd/internal/telemetry"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
	"github.com/incidentd/incidentd/store"
	"github.com/incidentd/incidentd/webhook"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "incidentd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr)
	case "migrate":
		return migrate(ctx, args, stderr)
	case "apikey":
		if len(args) == 0 || args[0] != "create" {
			return errors.New("usage: incidentd apikey create --tenant T --name N --scopes a,b [--tier T] [--actor A] [--expires-in D] [--json]")
		}
		return apikeyCreate(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: incidentd [serve|migrate|apikey create] [flags]; incidentd <cmd> -h lists the flags")
		return nil
	}
	return fmt.Errorf("unknown command %q: want serve, migrate or apikey create", cmd)
}

// env returns the environment value of key, or def.
func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// secret is a string flag whose value is never printed: flag shows a
// flag's default (here, what the environment set) in help and errors.
type secret struct{ v *string }

func (s secret) String() string {
	return "" // also the zero value's, so help shows no default
}

func (s secret) Set(v string) error { *s.v = v; return nil }

// secretVar registers a secret flag on p, its default from the environment.
func secretVar(fs *flag.FlagSet, p *string, name, envKey, def, usage string) {
	*p = env(envKey, def)
	fs.Var(secret{p}, name, usage)
}

// common are the flags every subcommand shares.
type common struct {
	databaseURL string
	logLevel    string
	logFormat   string
	dbMaxConns  int
	// dbTracer, if set, makes database spans (serve, with tracing on).
	dbTracer pgx.QueryTracer
	// webhookKey, if set, seals webhook signing secrets at rest (serve).
	webhookKey []byte
}

func (c *common) register(fs *flag.FlagSet) {
	secretVar(fs, &c.databaseURL, "database-url", "DATABASE_URL", store.DefaultURL, // it may hold a password
		"postgres://... or sqlite://<file path>; default "+store.DefaultURL+" (env DATABASE_URL)")
	fs.StringVar(&c.logLevel, "log-level", env("INCIDENTD_LOG_LEVEL", "info"), "debug, info, warn or error (env INCIDENTD_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", env("INCIDENTD_LOG_FORMAT", "text"), "text or json (env INCIDENTD_LOG_FORMAT)")
	maxConns := 32
	if v := env("INCIDENTD_DB_MAX_CONNS", ""); v != "" {
		fmt.Sscanf(v, "%d", &maxConns) //nolint:errcheck // a bad value keeps the default; flag parsing reports it
	}
	fs.IntVar(&c.dbMaxConns, "db-max-conns", maxConns, "PostgreSQL connection pool size (env INCIDENTD_DB_MAX_CONNS)")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.logFormat)
}

func (c *common) open(ctx context.Context) (*store.Store, error) {
	st, err := store.Open(ctx, c.databaseURL, store.Options{MaxOpenConns: c.dbMaxConns, Tracer: c.dbTracer, WebhookSecretKey: c.webhookKey})
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// a server that renders JSON allocates briskly, and on a small machine the
// default (100) spends a tenth of its CPU collecting (measured in
// docs/performance.md); twice the heap buys most of it back.
const defaultGCPercent = 200

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	addr := fs.String("addr", env("INCIDENTD_ADDR", "127.0.0.1:8080"), "listen address (env INCIDENTD_ADDR)")
	rate := fs.String("rate-limit", env("INCIDENTD_RATE_LIMIT", auth.DefaultRate),
		"the default tier's budget per principal in ulule notation, e.g. 200-M, 10-S, 5000-H (env INCIDENTD_RATE_LIMIT)")
	tiers := fs.String("rate-tiers", env("INCIDENTD_RATE_TIERS", ""),
		"extra or overriding tiers, comma-separated name=RATE[:BURST], e.g. tiny=5-M,standard=1000-M:100-S (env INCIDENTD_RATE_TIERS)")
	oidcIssuer := fs.String("oidc-issuer", env("OIDC_ISSUER", ""), "accept bearer JWTs from this OpenID Connect issuer (env OIDC_ISSUER)")
	oidcAudience := fs.String("oidc-audience", env("OIDC_AUDIENCE", ""), "the audience those tokens must carry (env OIDC_AUDIENCE)")
	oidcTenant := fs.String("oidc-tenant-claim", env("OIDC_TENANT_CLAIM", "tenant_id"), "the claim that names the tenant (env OIDC_TENANT_CLAIM)")
	oidcTier := fs.String("oidc-default-tier", env("OIDC_DEFAULT_TIER", auth.DefaultTier), "rate tier of tokens without a tier claim (env OIDC_DEFAULT_TIER)")
	monSecret := new(string)
	secretVar(fs, monSecret, "monitoring-secret-key", "MONITORING_SECRET_KEY", "",
		"the monitoring contract's shared secret (HS256) for monitoring tokens on /component_status (env MONITORING_SECRET_KEY)")
	monPayload := fs.String("monitoring-payload-key", env("MONITORING_PAYLOAD_KEY", ""),
		"the claim a monitoring token must carry (env MONITORING_PAYLOAD_KEY)")
	monTenant := fs.String("monitoring-tenant", env("MONITORING_TENANT", ""), "the tenant monitoring tokens act in (env MONITORING_TENANT)")
	redisURL := fs.String("redis-url", env("REDIS_URL", ""),
		"share rate-limit counters between instances in this Redis, e.g. redis://127.0.0.1:6379/0 (env REDIS_URL)")
	grace := fs.Duration("shutdown-timeout", durationEnv("INCIDENTD_SHUTDOWN_TIMEOUT", 15*time.Second),
		"how long requests in flight may take to finish on SIGTERM (env INCIDENTD_SHUTDOWN_TIMEOUT)")
	pprofAddr := fs.String("pprof-addr", env("INCIDENTD_PPROF_ADDR", ""),
		"if set, serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060 (env INCIDENTD_PPROF_ADDR)")
	keyTTL := fs.Duration("key-cache-ttl", durationEnv("INCIDENTD_KEY_CACHE_TTL", 5*time.Second),
		"how long a verified API key is kept in memory; 0 looks every request up (env INCIDENTD_KEY_CACHE_TTL)")
	introspection := fs.Bool("graphql-introspection", boolEnv("INCIDENTD_GRAPHQL_INTROSPECTION", true),
		"allow GraphQL introspection (env INCIDENTD_GRAPHQL_INTROSPECTION)")
	complexity := fs.Int("graphql-complexity", intEnv("INCIDENTD_GRAPHQL_COMPLEXITY", 5000),
		"maximum GraphQL operation complexity; a list costs its page size times its items (env INCIDENTD_GRAPHQL_COMPLEXITY)")
	depth := fs.Int("graphql-depth", intEnv("INCIDENTD_GRAPHQL_DEPTH", 10), "maximum GraphQL selection depth (env INCIDENTD_GRAPHQL_DEPTH)")
	keepAlive := fs.Duration("ws-keepalive", durationEnv("INCIDENTD_WS_KEEPALIVE", 15*time.Second),
		"WebSocket ping interval; a client that does not answer within twice this is dropped (env INCIDENTD_WS_KEEPALIVE)")
	origins := fs.String("ws-origins", env("INCIDENTD_WS_ORIGINS", ""),
		"comma-separated browser origins (host patterns) allowed to open WebSockets besides the same origin (env INCIDENTD_WS_ORIGINS)")
	subsPerConn := fs.Int("max-subscriptions-per-conn", intEnv("INCIDENTD_MAX_SUBSCRIPTIONS_PER_CONN", 20),
		"subscriptions one WebSocket may hold (env INCIDENTD_MAX_SUBSCRIPTIONS_PER_CONN)")
	subsPerTenant := fs.Int("max-subscriptions-per-tenant", intEnv("INCIDENTD_MAX_SUBSCRIPTIONS_PER_TENANT", 10000),
		"concurrent subscriptions (WebSocket and SSE) per tenant and instance (env INCIDENTD_MAX_SUBSCRIPTIONS_PER_TENANT)")
	buffer := fs.Int("subscriber-buffer", intEnv("INCIDENTD_SUBSCRIBER_BUFFER", 256),
		"events queued per subscriber before it is dropped as a slow consumer (env INCIDENTD_SUBSCRIBER_BUFFER)")
	proxies := fs.String("trusted-proxies", env("INCIDENTD_TRUSTED_PROXIES", ""),
		"comma-separated addresses or CIDR prefixes of the load balancers in front; their X-Forwarded-For names the client (env INCIDENTD_TRUSTED_PROXIES)")
	hookPrivate := fs.Bool("webhook-allow-private-targets", boolEnv("INCIDENTD_WEBHOOK_ALLOW_PRIVATE_TARGETS", false),
		"let webhook endpoints use plain http and loopback, private and link-local addresses: development and tests only (env INCIDENTD_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)")
	hookSchedule := fs.String("webhook-retry-schedule", env("INCIDENTD_WEBHOOK_RETRY_SCHEDULE", ""),
		"waits before each webhook retry, comma-separated (default 5s,5m,30m,2h,5h,10h,10h) (env INCIDENTD_WEBHOOK_RETRY_SCHEDULE)")
	hookKey := new(string)
	secretVar(fs, hookKey, "webhook-secret-key", "INCIDENTD_WEBHOOK_SECRET_KEY", "",
		"base64 of 32 random bytes (openssl rand -base64 32): webhook signing secrets are stored sealed with it (AES-256-GCM); secrets stored before are sealed at start (env INCIDENTD_WEBHOOK_SECRET_KEY)")
	hookRetention := fs.Duration("webhook-log-retention", durationEnv("INCIDENTD_WEBHOOK_LOG_RETENTION", 30*24*time.Hour),
		"how long delivered and failed webhook deliveries stay in the delivery log (env INCIDENTD_WEBHOOK_LOG_RETENTION)")
	publicPerIP := fs.Int("public-max-per-ip", intEnv("INCIDENTD_PUBLIC_MAX_PER_IP", 50),
		"open public status streams (SSE and /graphql/public subscriptions) one client address may hold (env INCIDENTD_PUBLIC_MAX_PER_IP)")
	publicMax := fs.Int("public-max-viewers", intEnv("INCIDENTD_PUBLIC_MAX_VIEWERS", 20000),
		"open public status streams per instance (env INCIDENTD_PUBLIC_MAX_VIEWERS)")
	corsOrigins := fs.String("cors-origins", env("INCIDENTD_CORS_ORIGINS", ""),
		"comma-separated browser origins allowed to call the API, or * (env INCIDENTD_CORS_ORIGINS)")
	explorer := fs.Bool("graphiql", boolEnv("INCIDENTD_GRAPHIQL", true),
		"serve the GraphiQL explorer at GET /graphql for browsers (env INCIDENTD_GRAPHIQL)")
	metricsAddr := fs.String("metrics-addr", env("INCIDENTD_METRICS_ADDR", ""),
		"serve /metrics on this separate address instead of the main one, e.g. 127.0.0.1:9090 (env INCIDENTD_METRICS_ADDR)")
	metricsToken := fs.String("metrics-token", env("INCIDENTD_METRICS_TOKEN", ""),
		"if set, /metrics requires Authorization: Bearer <token> (env INCIDENTD_METRICS_TOKEN)")
	retention := fs.Duration("event-retention", durationEnv("INCIDENTD_EVENT_RETENTION", 24*time.Hour),
		"how long events stay replayable with after / Last-Event-ID (env INCIDENTD_EVENT_RETENTION)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if _, err := auth.ParseTiers(auth.BuiltinTiers+",default="+*rate+","+*tiers, nil); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Traces only when the standard OTEL_* environment names an endpoint.
	tracer, stopTracing, err := telemetry.Setup(ctx)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("stopping traces", "err", err)
		}
	}()
	if tracer != nil {
		c.dbTracer = telemetry.PgxTracer(tracer)
		log.Info("tracing on: spans go to the OTLP endpoint of the OTEL_* environment")
	}
	if c.webhookKey, err = store.ParseWebhookSecretKey(*hookKey); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := st.SealWebhookSecrets(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("webhook secrets sealed with INCIDENTD_WEBHOOK_SECRET_KEY", "endpoints", n)
	}

	var wsOrigins []string
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			wsOrigins = append(wsOrigins, o)
		}
	}
	var verifier *auth.OIDC
	if *oidcIssuer != "" {
		if verifier, err = auth.NewOIDC(ctx, auth.OIDCConfig{Issuer: *oidcIssuer, Audience: *oidcAudience,
			TenantClaim: *oidcTenant, DefaultTier: *oidcTier}, model.SystemClock{}); err != nil {
			return err
		}
	}
	var rateStore auth.Store
	if *redisURL != "" {
		rs, closeRedis, err := auth.NewRedisStore(ctx, *redisURL)
		if err != nil {
			return err
		}
		defer closeRedis() //nolint:errcheck // closing at exit
		rateStore = rs
	}
	trusted, err := auth.ParseProxies(*proxies)
	if err != nil {
		return err
	}
	schedule, err := webhook.ParseSchedule(*hookSchedule)
	if err != nil {
		return err
	}
	app, err := server.New(st, server.Config{
		TrustedProxies: trusted,
		Webhooks:       webhook.Options{AllowPrivateTargets: *hookPrivate, Schedule: schedule, Retention: *hookRetention},
		RateLimit:      *rate,
		RateTiers:      *tiers,
		RateStore:      rateStore,
		OIDC:           verifier,
		Monitoring:     &auth.MonitoringConfig{Secret: *monSecret, PayloadKey: *monPayload, Tenant: *monTenant},
		KeyCacheTTL:    *keyTTL,
		Logger:         log,
		GraphQL: graph.Config{
			ComplexityLimit: *complexity, DepthLimit: *depth, Introspection: *introspection,
			KeepAlive: *keepAlive, MaxSubscriptionsPerConn: *subsPerConn, WSOrigins: wsOrigins,
		},
		Live:            live.Options{Buffer: *buffer, MaxPerTenant: *subsPerTenant},
		Public:          live.PublicOptions{MaxPerIP: *publicPerIP, Max: *publicMax},
		EventRetention:  *retention,
		Explorer:        *explorer,
		CORSOrigins:     rest.ParseOrigins(*corsOrigins),
		MetricsToken:    *metricsToken,
		MetricsSeparate: *metricsAddr != "",
		Tracer:          tracer,
	})
	if err != nil {
		return err
	}
	// WebSockets are hijacked, so Shutdown does not wait for them: cancelling
	// the base context closes them once their subscriptions have ended.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           app.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	log.Info("incidentd listening", "addr", ln.Addr().String(), "store", st.Dialect(), "rate_limit", *rate)
	if *pprofAddr != "" {
		go servePprof(*pprofAddr, log)
	}
	if *metricsAddr != "" {
		stopMetrics, err := serveMetrics(*metricsAddr, app.Metrics, log)
		if err != nil {
			ln.Close()
			app.Close()
			return err
		}
		defer stopMetrics()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: letting requests in flight finish", "timeout", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	app.Close() // subscribers are told, streams end
	err = srv.Shutdown(sctx)
	cancelBase()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// servePprof exposes profiles on their own listener, never on the API port.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("pprof", "err", err)
	}
}

// serveMetrics serves the Prometheus scrape at /metrics on its own
// listener (the main one then does not serve it); stop closes it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics", "err", err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}

func intEnv(key string, def int) int {
	if n, err := strconv.Atoi(env(key, "")); err == nil {
		return n
	}
	return def
}

func boolEnv(key string, def bool) bool {
	if b, err := strconv.ParseBool(env(key, "")); err == nil {
		return b
	}
	return def
}

func durationEnv(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env(key, "")); err == nil {
		return d
	}
	return def
}

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stderr, "migrations applied to", st.Dialect())
	return nil
}

func apikeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	tenant := fs.String("tenant", "", "tenant the key acts in (required)")
	name := fs.String("name", "", "a name to recognise the key by (required)")
	scopes := fs.String("scopes", "", "comma-separated scopes, e.g. incidents:read,incidents:write (required)")
	tier := fs.String("tier", "default", "rate-limit tier")
	actor := fs.String("actor", "", "actor id recorded as createdBy/updatedBy (default: the key's id)")
	expiresIn := fs.Duration("expires-in", 0, "lifetime of the key, e.g. 720h (default: no expiry)")
	asJSON := fs.Bool("json", false, "print id, prefix, tenant, scopes and key as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in := model.APIKeyIssue{TenantID: *tenant, Name: *name, Tier: *tier, ActorID: *actor}
	for s := range strings.SplitSeq(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			in.Scopes = append(in.Scopes, model.Scope(s))
		}
	}
	if *expiresIn > 0 {
		t := time.Now().Add(*expiresIn)
		in.ExpiresAt = &t
	}
	if errs := in.Validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Message
		}
		return fmt.Errorf("apikey create: %s", strings.Join(msgs, "; "))
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	key, secret, err := st.APIKeys().IssueAPIKey(ctx, in)
	if err != nil {
		return fmt.Errorf("apikey create: %w", err)
	}
	if !*asJSON {
		_, err = fmt.Fprintln(stdout, secret)
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{
		"id": key.ID, "prefix": key.Prefix, "tenant": key.TenantID, "name": key.Name,
		"scopes": key.Scopes, "tier": key.Tier, "actor": key.ActorID, "key": secret,
	})
}
