package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"

	"github.com/incidentd/incidentd/model"
)

// idempotent serves every POST that carries an Idempotency-Key once per
// key (model.IdempotencyStore): a retry with the same key and request gets
// the first answer again (status, body, Location, and
// Idempotent-Replayed: true); the same key with another request is a 422;
// a retry while the first runs waits for it, then 409. Answers of 5xx and
// 429 are not kept, so that a retry runs again. An answer showing a secret
// once is kept without it (keepInstead), as GraphQL's are: the store never
// holds a live credential.
func idempotent(keys model.IdempotencyStore) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if keys == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, present := r.Header["Idempotency-Key"]
			if r.Method != http.MethodPost || !present || model.PrincipalFrom(r.Context()) == nil {
				next.ServeHTTP(w, r)
				return
			}
			if len(key) != 1 {
				writeError(w, r, model.Invalid("Invalid idempotency key", model.FieldError{Field: "Idempotency-Key", Message: "Idempotency-Key must be given once"}))
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			if err != nil || len(body) > MaxBodyBytes {
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r) // the handler answers the body's problem, nothing is kept
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h := sha256.New()
			_, _ = io.WriteString(h, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+"\n")
			_, _ = h.Write(body)
			replay, claimed, err := keys.Begin(r.Context(), key[0], hex.EncodeToString(h.Sum(nil)))
			if err != nil {
				writeError(w, r, err)
				return
			}
			if replay != nil {
				hd := w.Header()
				hd.Set("Idempotent-Replayed", "true")
				if replay.Location != "" {
					hd.Set("Location", replay.Location)
				}
				hd.Set("Content-Type", "application/json")
				if replay.Status >= 400 {
					hd.Set("Content-Type", "application/problem+json")
				}
				w.WriteHeader(replay.Status)
				_, _ = w.Write(replay.Body)
				return
			}
			if !claimed {
				writeError(w, r, model.Internal(nil, "idempotency key neither claimed nor kept"))
				return
			}
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			var instead []byte
			next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), keptAnswerKey{}, &instead)))
			// Kept even if the client went away meanwhile: the work is done.
			ctx := context.WithoutCancel(r.Context())
			if rec.status >= 500 || rec.status == http.StatusTooManyRequests {
				_ = keys.Abandon(ctx, key[0])
				return
			}
			answer := rec.body.Bytes()
			if instead != nil {
				answer = instead
			}
			_ = keys.Finish(ctx, key[0], model.StoredResponse{Status: rec.status, Location: w.Header().Get("Location"), Body: answer})
		})
	}
}

type keptAnswerKey struct{}

// keepInstead sets the body an idempotent retry of this request is
// answered with, in place of the one written: the same resource without
// the secret shown once. Without an Idempotency-Key it does nothing.
func keepInstead(r *http.Request, v any) {
	if kept, ok := r.Context().Value(keptAnswerKey{}).(*[]byte); ok {
		if b, err := json.Marshal(v); err == nil {
			*kept = append(b, '\n')
		}
	}
}

// recorder copies an answer as it is written.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
