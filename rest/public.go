package rest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// The public door: a published tenant's status without credentials, for
// status widgets and pages on any origin the tenant allows. Every answer
// here is limited per client address, carries the tenant's CORS answer,
// and says nothing of who did what.
type publicHandlers struct {
	svc       model.StatusService
	uptimeSvc model.UptimeService
	limiter   *auth.Limiter
	public    *live.Public
}

// PublicVersion names a public summary's content: the same components,
// incidents and maintenance give the same version, whenever it was read
// (generatedAt is left out). It is the summary's ETag and its stream's
// event id.
func PublicVersion(s *model.StatusSummary) string {
	cp := *s
	cp.GeneratedAt = time.Time{}
	b, err := json.Marshal(toSummaryJSON(&cp, true))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// admit charges the client address one request and answers the tenant's
// CORS headers; false when it answered already.
func (h publicHandlers) admit(w http.ResponseWriter, r *http.Request) (*model.Publication, bool) {
	if h.limiter != nil {
		u, err := h.limiter.Charge(r.Context(), "ip:"+auth.ClientIP(r), auth.DefaultTier, 1)
		if err != nil {
			writeError(w, r, model.Internal(err, "rate limiter"))
			return nil, false
		}
		auth.SetHeaders(w.Header(), u)
		if u.Reached {
			writeError(w, r, auth.RateLimited(u))
			return nil, false
		}
	}
	pub, err := h.svc.Publication(r.Context(), chi.URLParam(r, "tenant"))
	if err != nil {
		if model.AsError(err).Code == model.CodeNotFound {
			// Any page may learn that a status is not published (anyone
			// can): a widget then stops instead of retrying forever.
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		writeError(w, r, err)
		return nil, false
	}
	allowOrigin(w, r, pub)
	return pub, true
}

// allowOrigin lets a browser page of an origin the tenant allows read the
// answer (the API-wide CORS setting may allow more).
func allowOrigin(w http.ResponseWriter, r *http.Request, pub *model.Publication) {
	h := w.Header()
	h.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && pub.Allows(o) {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", "ETag, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, X-Request-Id")
	}
}

// summary serves GET /v1/public/{tenant}/status: cacheable (ETag, a short
// max-age), 304 to a poller that has the current version.
func (h publicHandlers) summary(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	if _, ok := h.admit(w, r); !ok {
		return
	}
	s, err := h.svc.PublicSummary(r.Context(), chi.URLParam(r, "tenant"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	etag := `W/"` + PublicVersion(s) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "public, max-age=5, stale-while-revalidate=30")
	if NoneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, toSummaryJSON(s, true))
}

// sseRendering is the public stream's key: one rendering for all its viewers.
const sseRendering = "sse"

// renderSSE renders a status as one whole server-sent event.
func renderSSE(s *model.StatusSummary, version string) ([]byte, error) {
	b, err := json.Marshal(toSummaryJSON(s, true))
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "id: %s\nevent: status\ndata: %s\n\n", version, b), nil
}

// events serves GET /v1/public/{tenant}/status/events: the summary as a
// server-sent event now and on every change (each a whole state; a viewer
// that falls behind gets the newest). Last-Event-ID with the current
// version skips the first. Unpublishing ends it with `event: end`.
func (h publicHandlers) events(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	if _, ok := h.admit(w, r); !ok {
		return
	}
	ctx := r.Context()
	v, err := h.public.Watch(ctx, chi.URLParam(r, "tenant"), auth.ClientIP(r), sseRendering, renderSSE, r.Header.Get("Last-Event-ID"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer v.Close()
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(SSEKeepAlive)
	defer tick.Stop()
	for {
		b, err := v.Take()
		switch {
		case err != nil:
			reason := "shutdown"
			if err == live.ErrUnpublished {
				reason = "unpublished"
			}
			fmt.Fprintf(w, "event: end\ndata: {\"reason\":%q}\n\n", reason)
			_ = rc.Flush()
			return
		case b != nil:
			if _, err := w.Write(b); err != nil || rc.Flush() != nil {
				return
			}
			continue
		}
		select {
		case <-v.Wake():
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
