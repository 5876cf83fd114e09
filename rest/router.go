// Package rest serves the REST door: the incidents contract at /v1 (also under
// /api/v1), problem+json errors, the OpenAPI document and Swagger UI.
package rest

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// Deps is what the REST door needs.
type Deps struct {
	Incidents     model.IncidentService
	APIKeys       model.APIKeyService
	Components    model.ComponentService
	Ingest        model.IngestService
	Maintenance   model.MaintenanceService
	Status        model.StatusService
	Relations     model.RelationService
	Catalogue     model.CatalogueService
	Audit         model.AuditLog
	Authenticator *auth.Authenticator
	// MonitoringAuthenticator serves the monitoring endpoints (default: Authenticator).
	MonitoringAuthenticator *auth.Authenticator
	Limiter                 *auth.Limiter
	Clock                   model.Clock
	Logger                  *slog.Logger
	// Ready reports whether the server can serve (database reachable).
	Ready func(ctx context.Context) error
	// Events and Hub serve the live stream at /v1/incidents/events.
	Events model.EventLog
	Hub    *live.Hub
	// GraphQL, if set, is mounted at /graphql (it authenticates on its own:
	// WebSocket credentials arrive in connection_init).
	GraphQL http.Handler
	// Mounts are extra unauthenticated handlers by chi pattern (explorer assets).
	Mounts map[string]http.Handler
	// Idempotency keeps the answers of POSTs sent with an Idempotency-Key.
	Idempotency model.IdempotencyStore
	// Webhooks manages outgoing webhook endpoints.
	Webhooks model.WebhookService
	// Settings are the tenant's own rules.
	Settings model.SettingsService
	// Uptime serves components' uptime history.
	Uptime model.UptimeService
	// Public fans published tenants' status out to anonymous viewers.
	Public *live.Public
	// CORSOrigins are the browser origins allowed to call the API ("*": any).
	CORSOrigins []string
}

// NewRouter returns the HTTP handler of the whole REST door.
func NewRouter(d Deps) http.Handler {
	if d.Clock == nil {
		d.Clock = model.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	r := chi.NewRouter()
	r.Use(withRequestID, logRequests(d.Logger), securityHeaders, cors(d.CORSOrigins))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problems[model.CodeNotFound], "No route for "+r.Method+" "+r.URL.Path, nil)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, probMethodNotAllowed, "Method "+r.Method+" is not allowed on "+r.URL.Path, nil)
	})

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			if err := d.Ready(r.Context()); err != nil {
				d.Logger.WarnContext(r.Context(), "not ready", "err", err)
				writeError(w, r, &model.Error{Code: model.CodeUnavailable, Message: "database unreachable"})
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	})
	mountDocs(r)

	monAuth := d.MonitoringAuthenticator
	if monAuth == nil {
		monAuth = d.Authenticator
	}
	general := auth.Middleware(d.Authenticator, d.Limiter, writeError)
	monitoring := auth.Middleware(monAuth, d.Limiter, writeError)
	api := func(r chi.Router) {
		// Every /v1 request is authenticated and charged (unknown paths too,
		// so that every answer carries the rate-limit headers); the monitoring
		// endpoint also accepts the monitoring contract's shared-secret token.
		r.Use(func(next http.Handler) http.Handler {
			g, m := general(next), monitoring(next)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if monitoringRoute(r) {
					m.ServeHTTP(w, r)
					return
				}
				g.ServeHTTP(w, r)
			})
		}, notePrincipal, idempotent(d.Idempotency))
		r.Route("/incidents", func(r chi.Router) {
			if d.Hub != nil {
				r.Get("/events", eventHandlers{d.Hub, d.Events, d.Relations}.stream)
			}
			incidentHandlers{d.Incidents, d.Relations}.routes(r)
		})
		if d.APIKeys != nil {
			r.Route("/api-keys", apiKeyHandlers{d.APIKeys}.routes)
		}
		if d.Components != nil {
			r.Route("/components", func(r chi.Router) {
				if d.Hub != nil && d.Relations != nil {
					r.Get("/events", eventHandlers{d.Hub, d.Events, d.Relations}.componentStream)
				}
				if d.Uptime != nil {
					r.Get("/{id}/uptime", uptimeHandlers{d.Uptime}.get)
				}
				componentHandlers{d.Components, d.Relations}.routes(r)
			})
		}
		if d.Catalogue != nil {
			c := catalogueHandlers{d.Catalogue}
			r.Route("/impact-types", c.impactTypeRoutes)
			r.Route("/severities", c.severityRoutes)
			r.Route("/phases", c.phaseRoutes)
		}
		if d.Audit != nil {
			r.Get("/audit-events", auditHandlers{d.Audit}.list)
		}
		if d.Webhooks != nil {
			r.Route("/webhooks", webhookHandlers{d.Webhooks}.routes)
		}
		if d.Settings != nil {
			r.Get("/settings", settingsHandlers{d.Settings}.get)
			r.Put("/settings", settingsHandlers{d.Settings}.put)
		}
		if d.Maintenance != nil {
			r.Route("/maintenance", maintenanceHandlers{d.Maintenance}.routes)
		}
		if d.Status != nil {
			r.Get("/status", statusHandlers{svc: d.Status}.summary)
			r.Put("/status/publication", statusHandlers{svc: d.Status}.publication)
		}
		if d.Ingest != nil {
			r.Post("/component_status", ingestHandlers{d.Ingest}.report)
			r.Get("/component_status", ingestHandlers{d.Ingest}.status)
		}
	}
	// A published status page needs no credentials: its own router, rate
	// limited per client IP by its handler.
	if d.Status != nil {
		pub := publicHandlers{svc: d.Status, uptimeSvc: d.Uptime, limiter: d.Limiter, public: d.Public}
		for _, prefix := range []string{"/v1/public/{tenant}", "/api/v1/public/{tenant}"} {
			r.Get(prefix+"/status", pub.summary)
			if d.Public != nil {
				r.Get(prefix+"/status/events", pub.events)
			}
			if d.Uptime != nil {
				r.Get(prefix+"/uptime", pub.uptime)
			}
			r.Get(prefix+"/badge.svg", pub.badge)
			r.Get(prefix+"/feed.atom", pub.feed(true))
			r.Get(prefix+"/feed.rss", pub.feed(false))
		}
	}
	r.Route("/v1", api)
	r.With(deprecated(apiV1Alias, monitoringPath)).Route("/api/v1", api)
	if d.GraphQL != nil {
		r.Handle("/graphql", d.GraphQL)
	}
	for pattern, h := range d.Mounts {
		r.Handle(pattern, h)
	}
	return r
}

// monitoringRoute reports whether r is for one of the routes the monitoring
// token may call: POST and GET /component_status and GET /incidents. It
// compares the path chi is about to route within /v1 (RoutePath, in the
// same representation chi routes on, escapes kept) with the whole route, so
// that no other route is reached with the token however its path ends or is
// encoded.
func monitoringRoute(r *http.Request) bool {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return false
	}
	switch rctx.RoutePath {
	case "/component_status":
		return r.Method == http.MethodPost || r.Method == http.MethodGet
	case "/incidents":
		return r.Method == http.MethodGet
	}
	return false
}
