package rest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/model"
)

type requestIDKey struct{}

// logNote carries what inner middleware learns (the tenant) out to the log line.
type logNote struct{ tenant string }

type logNoteKey struct{}

// notePrincipal records the authenticated tenant for the request log line.
func notePrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := r.Context().Value(logNoteKey{}).(*logNote); ok {
			if p := model.PrincipalFrom(r.Context()); p != nil {
				n.tenant = p.TenantID
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RequestID returns the id of the request in ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var incomingID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// withRequestID adopts a sane incoming X-Request-Id (so that ids follow a
// request through proxies) or makes one, and echoes it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !incomingID.MatchString(id) {
			id = "req_" + model.RandomString(24, "abcdefghijklmnopqrstuvwxyz0123456789")
		}
		w.Header().Set("X-Request-Id", id)
		ctx := model.WithRequestID(context.WithValue(r.Context(), requestIDKey{}, id), id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (hijacking, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush serves streaming handlers that assert http.Flusher directly.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// logRequests writes one line per request, and turns a panic into a 500
// problem instead of a dropped connection.
func logRequests(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// At debug level, the start too: a request that hangs is seen
			// before it ends.
			log.DebugContext(r.Context(), "request started", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path)
			sw := &statusWriter{ResponseWriter: w}
			note := &logNote{}
			r = r.WithContext(context.WithValue(r.Context(), logNoteKey{}, note))
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic", "request_id", RequestID(r.Context()),
						"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
					if sw.status == 0 {
						writeError(sw, r, model.Internal(fmt.Errorf("panic: %v", v), "handler"))
					}
				}
				route := r.URL.Path
				if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
					route = rc.RoutePattern()
				}
				attrs := []slog.Attr{
					slog.String("request_id", RequestID(r.Context())),
					slog.String("method", r.Method),
					slog.String("route", route),
					slog.Int("status", sw.status),
					slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
					slog.Int("bytes", sw.bytes),
				}
				if note.tenant != "" {
					attrs = append(attrs, slog.String("tenant", note.tenant))
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// securityHeaders are safe on every response; pages get framing protection.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
