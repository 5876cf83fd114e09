package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	libredis "github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/incidentd/incidentd/model"
)

// DefaultRate is the incidents contract's budget: 200 requests per minute per client.
const DefaultRate = "200-M"

// DefaultTier is the tier of credentials that name none.
const DefaultTier = "default"

// Tier is a named budget: a rate, and optionally a burst enforced as a short
// second window (the platform conventions: standard 1000/minute with bursts of 100).
type Tier struct {
	Name  string
	Rate  limiter.Rate
	Burst *limiter.Rate
}

// BuiltinTiers are the contracts' tiers: default (the incidents contract), free/pro/enterprise
// (the public API conventions), standard/premium with bursts (the platform conventions).
const BuiltinTiers = "default=200-M,free=100-H,pro=1000-H,enterprise=10000-H,standard=1000-M:100-S,premium=5000-M:500-S"

// ParseTiers reads comma-separated name=RATE[:BURST] in ulule's notation,
// adding to or overriding base (which is not modified).
func ParseTiers(spec string, base map[string]Tier) (map[string]Tier, error) {
	out := make(map[string]Tier, len(base))
	for k, v := range base {
		out[k] = v
	}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rates, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("rate tier %q: want name=RATE[:BURST], e.g. standard=1000-M:100-S", item)
		}
		main, burst, hasBurst := strings.Cut(rates, ":")
		r, err := limiter.NewRateFromFormatted(strings.TrimSpace(main))
		if err != nil {
			return nil, fmt.Errorf("rate tier %s: %w", name, err)
		}
		t := Tier{Name: name, Rate: r}
		if hasBurst {
			b, err := limiter.NewRateFromFormatted(strings.TrimSpace(burst))
			if err != nil {
				return nil, fmt.Errorf("rate tier %s burst: %w", name, err)
			}
			if b.Period >= r.Period {
				return nil, fmt.Errorf("rate tier %s: the burst window must be shorter than the main one", name)
			}
			t.Burst = &b
		}
		out[name] = t
	}
	if _, ok := out[DefaultTier]; !ok {
		return nil, fmt.Errorf("rate tiers: no %q tier", DefaultTier)
	}
	return out, nil
}

// Store keeps rate-limit counters: in memory for one instance, in Redis so
// that several instances share one budget per principal.
type Store = limiter.Store

// NewMemoryStore keeps counters in this process.
func NewMemoryStore() Store { return memory.NewStore() }

// NewRedisStore keeps counters in the Redis at url (redis://host:port/db).
// It must answer at start (so that a wrong URL fails fast); once running,
// while it does not answer, counters are kept in this instance (fail open
// to per-instance budgets, see fallbackStore) and Redis is tried again every
// second. The returned close function releases the client.
func NewRedisStore(ctx context.Context, url string) (Store, func() error, error) {
	opt, err := libredis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("redis url: %w", err)
	}
	// A request waits on Redis at most this long before it is counted
	// locally (the defaults, 5 s to dial and 3 s to read, three retries,
	// would hold every request for seconds while Redis is away).
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	opt.MaxRetries = -1
	client := libredis.NewClient(opt)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	st, err := redisstore.NewStoreWithOptions(client, limiter.StoreOptions{Prefix: "incidentd:rl:", MaxRetry: 3})
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis limiter store: %w", err)
	}
	return newFallbackStore(st), client.Close, nil
}

// Limiter charges budgets keyed by principal (or by client IP for requests
// that fail authentication), in the principal's tier.
type Limiter struct {
	tiers map[string]tierLimiters
	// refused, if set, is told of each refused charge (metrics).
	refused func(tier, reason string)
}

// OnRefusal registers f to be told of every refused charge: the tier, and
// the window spent ("budget" for the main one, "burst"). Call it before the
// limiter serves.
func (l *Limiter) OnRefusal(f func(tier, reason string)) { l.refused = f }

type tierLimiters struct {
	tier        Tier
	main, burst *limiter.Limiter
}

// NewLimiter builds a limiter over store for tiers (see ParseTiers).
func NewLimiter(store Store, tiers map[string]Tier) *Limiter {
	l := &Limiter{tiers: make(map[string]tierLimiters, len(tiers))}
	for name, t := range tiers {
		tl := tierLimiters{tier: t, main: limiter.New(store, t.Rate)}
		if t.Burst != nil {
			tl.burst = limiter.New(store, *t.Burst)
		}
		l.tiers[name] = tl
	}
	return l
}

// NewSimpleLimiter is an in-memory limiter whose default tier has rate;
// the built-in tiers keep their rates.
func NewSimpleLimiter(rate string) (*Limiter, error) {
	tiers, err := ParseTiers(BuiltinTiers+",default="+rate, nil)
	if err != nil {
		return nil, err
	}
	return NewLimiter(NewMemoryStore(), tiers), nil
}

// Tiers lists the configured tier names.
func (l *Limiter) Tiers() []string {
	names := make([]string, 0, len(l.tiers))
	for n := range l.tiers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Usage is the outcome of one charge, for the X-RateLimit-* headers.
type Usage struct {
	Limit, Remaining int64
	Reset            int64 // Unix seconds when the main window resets
	Reached          bool
	RetryAfter       int64 // seconds, when Reached
	Describe         string
}

// Charge takes cost units from key's budget in tier (unknown tiers use the
// default). The burst window is charged first; a request refused by it does
// not spend the main window. A cost that does not fit in what remains is
// refused without spending anything (checked first, so that one expensive
// refusal cannot drain the budget); a cost of 1 is charged atomically, which
// keeps counting exact under contention.
func (l *Limiter) Charge(ctx context.Context, key, tier string, cost int64) (Usage, error) {
	tl, ok := l.tiers[tier]
	if !ok {
		tl = l.tiers[DefaultTier]
		tier = DefaultTier
	}
	if cost < 1 {
		cost = 1
	}
	now := time.Now().Unix()
	mainKey, burstKey := tier+":m:"+key, tier+":b:"+key
	refuse := func(c limiter.Context, window string, r limiter.Rate) (Usage, error) {
		if l.refused != nil {
			reason := "budget"
			if window != "" {
				reason = "burst"
			}
			l.refused(tier, reason)
		}
		m, err := tl.main.Peek(ctx, mainKey)
		if err != nil {
			return Usage{}, fmt.Errorf("rate limit: %w", err)
		}
		return Usage{Limit: m.Limit, Remaining: m.Remaining, Reset: m.Reset, Reached: true,
			RetryAfter: max(1, c.Reset-now), Describe: describe(r) + window}, nil
	}
	if cost > 1 {
		if tl.burst != nil {
			b, err := tl.burst.Peek(ctx, burstKey)
			if err != nil {
				return Usage{}, fmt.Errorf("rate limit: %w", err)
			}
			if b.Remaining < cost {
				return refuse(b, " (burst)", *tl.tier.Burst)
			}
		}
		m, err := tl.main.Peek(ctx, mainKey)
		if err != nil {
			return Usage{}, fmt.Errorf("rate limit: %w", err)
		}
		if m.Remaining < cost {
			return refuse(m, "", tl.tier.Rate)
		}
	}
	if tl.burst != nil {
		b, err := tl.burst.Increment(ctx, burstKey, cost)
		if err != nil {
			return Usage{}, fmt.Errorf("rate limit: %w", err)
		}
		if b.Reached {
			return refuse(b, " (burst)", *tl.tier.Burst)
		}
	}
	m, err := tl.main.Increment(ctx, mainKey, cost)
	if err != nil {
		return Usage{}, fmt.Errorf("rate limit: %w", err)
	}
	if m.Reached && l.refused != nil {
		l.refused(tier, "budget")
	}
	return Usage{Limit: m.Limit, Remaining: m.Remaining, Reset: m.Reset, Reached: m.Reached,
		RetryAfter: max(1, m.Reset-now), Describe: describe(tl.tier.Rate)}, nil
}

// describe says a rate in words, as the incidents contract does ("200 requests per minute").
func describe(r limiter.Rate) string {
	unit := map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[r.Period]
	if unit == "" {
		unit = r.Period.String()
	}
	return fmt.Sprintf("%d requests per %s", r.Limit, unit)
}

// Describe says the default tier's budget in words.
func (l *Limiter) Describe() string { return describe(l.tiers[DefaultTier].tier.Rate) }

// SetHeaders writes the X-RateLimit-* headers (and Retry-After once the
// budget is spent).
func SetHeaders(h http.Header, u Usage) {
	h.Set("X-RateLimit-Limit", strconv.FormatInt(u.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(u.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(u.Reset, 10))
	if u.Reached {
		h.Set("Retry-After", strconv.FormatInt(u.RetryAfter, 10))
	}
}

// RateLimited is the error of a spent budget.
func RateLimited(u Usage) error {
	return &model.Error{Code: model.CodeRateLimited, Message: "Rate limit of " + u.Describe + " exceeded"}
}

// ErrorWriter renders a domain error in the transport's format.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

type headerKey struct{}

// ResponseHeader returns the response headers of the HTTP request in ctx, so
// that a later charge (a GraphQL operation's cost) can update the
// X-RateLimit-* headers before the response is written.
func ResponseHeader(ctx context.Context) http.Header {
	h, _ := ctx.Value(headerKey{}).(http.Header)
	return h
}

// Middleware authenticates every request, puts the principal in its context
// and charges the principal's budget. A request that fails authentication is
// charged to its client IP, so guessing keys is rate-limited too.
func Middleware(a *Authenticator, l *Limiter, fail ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, authErr := a.AuthenticateRequest(r)
			bucket, tier := "ip:"+ClientIP(r), DefaultTier
			if authErr == nil {
				bucket, tier = p.Budget(), p.Tier
			}
			u, err := l.Charge(r.Context(), bucket, tier, 1)
			if err != nil {
				fail(w, r, model.Internal(err, "rate limiter"))
				return
			}
			SetHeaders(w.Header(), u)
			switch {
			case u.Reached:
				fail(w, r, RateLimited(u))
			case authErr != nil:
				fail(w, r, authErr)
			default:
				ctx := model.WithPrincipal(r.Context(), p)
				ctx = context.WithValue(ctx, headerKey{}, w.Header())
				next.ServeHTTP(w, r.WithContext(ctx))
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
