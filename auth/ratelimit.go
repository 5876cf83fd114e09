package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/incidentd/incidentd/model"
)

// DefaultRate is seed 000's budget: 200 requests per minute per client.
const DefaultRate = "200-M"

// Limiter charges budgets keyed by principal (or by client IP for requests
// that fail authentication).
type Limiter struct {
	lim  *limiter.Limiter
	rate limiter.Rate
}

// NewLimiter builds an in-memory limiter from a rate in ulule's notation ("200-M").
func NewLimiter(rate string) (*Limiter, error) {
	r, err := limiter.NewRateFromFormatted(rate)
	if err != nil {
		return nil, fmt.Errorf("rate limit %q: %w", rate, err)
	}
	return &Limiter{lim: limiter.New(memory.NewStore(), r), rate: r}, nil
}

// Describe says the budget in words, as seed 000 does ("200 requests per minute").
func (l *Limiter) Describe() string {
	unit := map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[l.rate.Period]
	if unit == "" {
		unit = l.rate.Period.String()
	}
	return fmt.Sprintf("%d requests per %s", l.rate.Limit, unit)
}

// Charge takes one request from key's budget.
func (l *Limiter) Charge(ctx context.Context, key string) (limiter.Context, error) {
	return l.lim.Get(ctx, key)
}

// SetHeaders writes the X-RateLimit-* headers (and Retry-After once the
// budget is spent).
func SetHeaders(h http.Header, c limiter.Context, now time.Time) {
	h.Set("X-RateLimit-Limit", strconv.FormatInt(c.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(c.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(c.Reset, 10))
	if c.Reached {
		wait := c.Reset - now.Unix()
		if wait < 1 {
			wait = 1
		}
		h.Set("Retry-After", strconv.FormatInt(wait, 10))
	}
}

// ErrorWriter renders a domain error in the transport's format.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Middleware authenticates every request, puts the principal in its context
// and charges the principal's budget. A request that fails authentication is
// charged to its client IP, so guessing keys is rate-limited too.
func Middleware(a *Authenticator, l *Limiter, clock model.Clock, fail ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, authErr := a.AuthenticateRequest(r)
			bucket := "ip:" + ClientIP(r)
			if authErr == nil {
				bucket = "cred:" + p.CredentialID
			}
			rl, err := l.Charge(r.Context(), bucket)
			if err != nil {
				fail(w, r, model.Internal(err, "rate limiter"))
				return
			}
			SetHeaders(w.Header(), rl, clock.Now())
			switch {
			case rl.Reached:
				fail(w, r, &model.Error{Code: model.CodeRateLimited,
					Message: "Rate limit of " + l.Describe() + " exceeded"})
			case authErr != nil:
				fail(w, r, authErr)
			default:
				next.ServeHTTP(w, r.WithContext(model.WithPrincipal(r.Context(), p)))
			}
		})
	}
}

// ClientIP is the peer address of r (proxies' forwarding headers are not
// trusted: they are the client's to forge).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
