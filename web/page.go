package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
)

//go:embed page.html
var pageHTML string

//go:embed page.css
var pageCSS string

// HistoryDays is how many days of past incidents the page lists.
const HistoryDays = 14

var (
	// cssHash lets the page's one inline style through a CSP that allows no
	// other inline style.
	cssHash = func() string {
		sum := sha256.Sum256([]byte(pageCSS))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}()
	tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"css":     func() template.CSS { return template.CSS(pageCSS) },
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"when":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
		"day":     func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
		"longDay": func(t time.Time) string { return t.UTC().Format("Monday 2 January 2006") },
		"join":    func(s []string) string { return strings.Join(s, ", ") },
	}).Parse(pageHTML))
)

type page struct {
	status model.StatusService
	uptime model.UptimeService
	lim    *auth.Limiter
	clock  model.Clock
	log    *slog.Logger
}

// StatusPage serves GET /status/{tenant}: a published tenant's status as a
// page that needs no JavaScript (the widget script refreshes it live),
// which the tenant's allowed origins may frame. Unknown and unpublished
// tenants get the same 404 page. Each request is charged to the client IP,
// like the public summary. Each component shows its uptime history from
// uptime (none when uptime is nil).
func StatusPage(status model.StatusService, uptime model.UptimeService, lim *auth.Limiter, clock model.Clock, log *slog.Logger) http.Handler {
	if clock == nil {
		clock = model.SystemClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	return page{status: status, uptime: uptime, lim: lim, clock: clock, log: log}
}

func (p page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !getOrHead(w, r) {
		return
	}
	ctx := r.Context()
	if p.lim != nil {
		u, err := p.lim.Charge(ctx, "ip:"+auth.ClientIP(r), auth.DefaultTier, 1)
		if err != nil {
			p.fail(w, r, fmt.Errorf("status page: rate limiter: %w", err))
			return
		}
		auth.SetHeaders(w.Header(), u)
		if u.Reached {
			p.errorPage(w, r, http.StatusTooManyRequests, "Too many requests",
				"This page was asked for too often from your address. Try again in "+strconv.FormatInt(u.RetryAfter, 10)+" seconds.")
			return
		}
	}
	tenant := chi.URLParam(r, "tenant")
	v, pub, err := p.load(ctx, tenant)
	if model.ErrorCode(err) == model.CodeNotFound {
		// The same page whether the tenant does not exist or has not
		// published: nothing tells the two apart.
		w.Header().Set("Cache-Control", "public, max-age=10")
		p.errorPage(w, r, http.StatusNotFound, "Status page not found", "There is no published status page at this address.")
		return
	}
	if model.ErrorCode(err) == model.CodeUnavailable {
		p.log.WarnContext(ctx, "status page", "request_id", model.RequestIDFrom(ctx), "err", err)
		w.Header().Set("Retry-After", "5")
		p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The status page cannot be shown right now. Try again shortly.")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "page", v); err != nil {
		p.fail(w, r, fmt.Errorf("status page: render: %w", err))
		return
	}
	h := w.Header()
	// The tenant's allowed origins may frame this page, nobody else: the
	// CSP says who, so the blanket DENY the router set must go.
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", pageCSP(frameAncestors(pub.AllowedOrigins)))
	h.Set("Cache-Control", "public, max-age=10")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// load reads what the page shows: the publication (for framing), the
// summary, the recent history and the components' uptime.
func (p page) load(ctx context.Context, tenant string) (pageView, *model.Publication, error) {
	pub, err := p.status.Publication(ctx, tenant)
	if err != nil {
		return pageView{}, nil, fmt.Errorf("status page: publication: %w", err)
	}
	sum, err := p.status.PublicSummary(ctx, tenant)
	if err != nil {
		return pageView{}, nil, fmt.Errorf("status page: summary: %w", err)
	}
	hist, err := p.status.PublicHistory(ctx, tenant, HistoryDays)
	if err != nil {
		return pageView{}, nil, fmt.Errorf("status page: history: %w", err)
	}
	uptime, err := p.loadUptime(ctx, tenant, sum)
	if model.ErrorCode(err) == model.CodeNotFound {
		return pageView{}, nil, err // unpublished meanwhile
	}
	if err != nil {
		// The history is an extra: the page shows the status without it.
		p.log.WarnContext(ctx, "status page: uptime", "request_id", model.RequestIDFrom(ctx), "err", err)
		uptime = nil
	}
	return buildView(tenant, sum, hist, uptime, HistoryDays, p.clock.Now()), pub, nil
}

// loadUptime reads the uptime of the summary's components, at most
// model.MaxUptimeComponents at a time.
func (p page) loadUptime(ctx context.Context, tenant string, sum *model.StatusSummary) (map[string]*model.ComponentUptime, error) {
	if p.uptime == nil || len(sum.Components) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(sum.Components))
	for _, st := range sum.Components {
		ids = append(ids, st.Component.ID)
	}
	out := make(map[string]*model.ComponentUptime, len(ids))
	for chunk := range slices.Chunk(ids, model.MaxUptimeComponents) {
		m, err := p.uptime.PublicUptime(ctx, tenant, chunk)
		if err != nil {
			return nil, fmt.Errorf("status page: uptime: %w", err)
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// frameAncestors is the CSP source list of the origins that may frame the
// page. Allowed origins are normalised when they are set (scheme and host,
// nothing a CSP could read as another directive), so they go in as they are.
func frameAncestors(origins []string) string {
	var out []string
	for _, o := range origins {
		if o == "*" {
			return "*"
		}
		if n, ok := model.NormalizeOrigin(o); ok {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "'none'"
	}
	return strings.Join(out, " ")
}

// pageCSP allows the page its own script and stream, its one inline style,
// and nothing else.
func pageCSP(ancestors string) string {
	return "default-src 'none'; script-src 'self'; connect-src 'self'; style-src " + cssHash +
		"; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors " + ancestors
}

func (p page) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "status page", "request_id", model.RequestIDFrom(r.Context()), "err", err)
	p.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The status page could not be shown. Try again shortly.")
}

func (p page) errorPage(w http.ResponseWriter, r *http.Request, code int, title, message string) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "error", struct{ Title, Message string }{title, message}); err != nil {
		p.log.ErrorContext(r.Context(), "status page: render error page", "err", err)
	}
	h := w.Header()
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Security-Policy", pageCSP("'none'"))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
