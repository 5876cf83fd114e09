package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/model"
)

func TestParseTiersRules(t *testing.T) {
	base, err := auth.ParseTiers("default=10-M", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := auth.ParseTiers(" x = 5-H : 2-M ,, y=3-D , ", base)
	if err != nil {
		t.Fatal(err)
	}
	if len(base) != 1 {
		t.Errorf("base modified: %+v", base)
	}
	x, y, d := got["x"], got["y"], got["default"]
	if len(got) != 3 || x.Name != "x" || x.Rate.Limit != 5 || x.Rate.Period != time.Hour || x.Burst == nil ||
		x.Burst.Limit != 2 || x.Burst.Period != time.Minute || y.Name != "y" || y.Rate.Limit != 3 ||
		y.Rate.Period != 24*time.Hour || y.Burst != nil || d.Rate.Limit != 10 || d.Rate.Period != time.Minute {
		t.Errorf("tiers %+v", got)
	}

	// Overriding a tier replaces it whole, burst included.
	over, err := auth.ParseTiers(auth.BuiltinTiers+",standard=10-M,default=7-S", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := over["standard"]; s.Rate.Limit != 10 || s.Burst != nil {
		t.Errorf("overridden standard: %+v", s)
	}
	if d := over["default"]; d.Rate.Limit != 7 || d.Rate.Period != time.Second {
		t.Errorf("overridden default: %+v", d)
	}
	builtin, err := auth.ParseTiers(auth.BuiltinTiers, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantBuiltin := map[string][4]int64{ // limit, period (s), burst limit, burst period (s)
		"default": {200, 60, 0, 0}, "free": {100, 3600, 0, 0}, "pro": {1000, 3600, 0, 0},
		"enterprise": {10000, 3600, 0, 0}, "standard": {1000, 60, 100, 1}, "premium": {5000, 60, 500, 1},
	}
	for name, w := range wantBuiltin {
		tr, ok := builtin[name]
		var bl, bp int64
		if ok && tr.Burst != nil {
			bl, bp = tr.Burst.Limit, int64(tr.Burst.Period/time.Second)
		}
		if !ok || tr.Rate.Limit != w[0] || int64(tr.Rate.Period/time.Second) != w[1] || bl != w[2] || bp != w[3] {
			t.Errorf("built-in %s: %+v, want %v", name, tr, w)
		}
	}
	if len(builtin) != len(wantBuiltin) {
		t.Errorf("%d built-in tiers, want %d", len(builtin), len(wantBuiltin))
	}

	errs := map[string]string{
		"":                  `rate tiers: no "default" tier`,
		"x=1-M":             `rate tiers: no "default" tier`,
		"x":                 `rate tier "x": want name=RATE[:BURST], e.g. standard=1000-M:100-S`,
		" =5-M":             `rate tier "=5-M": want name=RATE[:BURST], e.g. standard=1000-M:100-S`,
		"x=5-M:10-M":        "rate tier x: the burst window must be shorter than the main one",
		"x=5-M:1-H":         "rate tier x: the burst window must be shorter than the main one",
		"default=5-S:1-S":   "rate tier default: the burst window must be shorter than the main one",
		"x=lots":            "rate tier x: ",
		"x=5-M:y":           "rate tier x burst: ",
		"default=1-M,x=5-Q": "rate tier x: ",
	}
	for spec, want := range errs {
		out, err := auth.ParseTiers(spec, nil)
		var ok bool
		if strings.HasSuffix(want, ": ") { // the rest is ulule's message
			ok = err != nil && strings.HasPrefix(err.Error(), want) && len(err.Error()) > len(want)
		} else {
			ok = err != nil && err.Error() == want
		}
		if !ok || out != nil {
			t.Errorf("%q: %v, %v; want %q", spec, out, err, want)
		}
	}
	// A burst just shorter than the main window is fine.
	if out, err := auth.ParseTiers("default=60-M:59-S", nil); err != nil || out["default"].Burst.Period != time.Second {
		t.Errorf("59-S burst of a minute: %v, %v", out, err)
	}
}

func TestNewSimpleLimiter(t *testing.T) {
	l, err := auth.NewSimpleLimiter("10-S")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Tiers(), []string{"default", "enterprise", "free", "premium", "pro", "standard"}; !slices.Equal(got, want) {
		t.Errorf("tiers %v, want %v", got, want)
	}
	if d := l.Describe(); d != "10 requests per second" {
		t.Errorf("describe %q", d)
	}
	u, err := l.Charge(t.Context(), "k", "pro", 1)
	if err != nil || u.Limit != 1000 || u.Remaining != 999 {
		t.Errorf("pro keeps its rate: %+v, %v", u, err)
	}
	u, err = l.Charge(t.Context(), "k", "default", 1)
	if err != nil || u.Limit != 10 || u.Remaining != 9 {
		t.Errorf("default: %+v, %v", u, err)
	}
	if l, err := auth.NewSimpleLimiter("lots"); err == nil || l != nil || !strings.HasPrefix(err.Error(), "rate tier default: ") {
		t.Errorf("bad rate: %v, %v", l, err)
	}
}

func TestDescribe(t *testing.T) {
	for rate, want := range map[limiter.Rate]string{
		{Period: time.Second, Limit: 1}:       "1 requests per second",
		{Period: time.Minute, Limit: 200}:     "200 requests per minute",
		{Period: time.Hour, Limit: 5000}:      "5000 requests per hour",
		{Period: 24 * time.Hour, Limit: 3}:    "3 requests per day",
		{Period: 90 * time.Second, Limit: 7}:  "7 requests per 1m30s",
		{Period: 48 * time.Hour, Limit: 9}:    "9 requests per 48h0m0s",
		{Period: 2 * time.Second, Limit: 100}: "100 requests per 2s",
	} {
		l := auth.NewLimiter(auth.NewMemoryStore(), map[string]auth.Tier{"default": {Name: "default", Rate: rate}})
		if got := l.Describe(); got != want {
			t.Errorf("%+v: %q, want %q", rate, got, want)
		}
	}
	err := auth.RateLimited(auth.Usage{Describe: "5 requests per minute (burst)"})
	var me *model.Error
	if !errors.As(err, &me) || me.Code != model.CodeRateLimited || me.Message != "Rate limit of 5 requests per minute (burst) exceeded" {
		t.Errorf("RateLimited: %#v", err)
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	auth.SetHeaders(h, auth.Usage{Limit: 200, Remaining: 17, Reset: 2000000060, RetryAfter: 42})
	want := http.Header{"X-Ratelimit-Limit": {"200"}, "X-Ratelimit-Remaining": {"17"}, "X-Ratelimit-Reset": {"2000000060"}}
	if !headersEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	h = http.Header{}
	auth.SetHeaders(h, auth.Usage{Limit: 3, Remaining: 0, Reset: 2000003600, Reached: true, RetryAfter: 3599})
	want = http.Header{"X-Ratelimit-Limit": {"3"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"2000003600"}, "Retry-After": {"3599"}}
	if !headersEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if !slices.Equal(a[k], v) {
			return false
		}
	}
	return true
}

// charger charges l and brackets the call's wall-clock second, so that
// Reset and RetryAfter can be checked exactly: the limiter has no clock of
// its own.
type charger struct {
	t *testing.T
	l *auth.Limiter
}

type charged struct {
	auth.Usage
	before, after int64 // Unix seconds around the call
}

func (c charger) charge(key, tier string, cost int64) charged {
	c.t.Helper()
	before := time.Now().Unix()
	u, err := c.l.Charge(c.t.Context(), key, tier, cost)
	if err != nil {
		c.t.Fatalf("charge %s %s %d: %v", key, tier, cost, err)
	}
	return charged{Usage: u, before: before, after: time.Now().Unix()}
}

// retryAfterIs checks RetryAfter is resetAt - now, now being the call's second.
func (u charged) retryAfterIs(t *testing.T, what string, resetAt int64) {
	t.Helper()
	lo, hi := max(1, resetAt-u.after), max(1, resetAt-u.before)
	if u.RetryAfter < lo || u.RetryAfter > hi {
		t.Errorf("%s: RetryAfter %d, want %d..%d (reset at %d)", what, u.RetryAfter, lo, hi, resetAt)
	}
}

// resetIs checks Reset is the end of a window of period opened at start.
func (u charged) resetIs(t *testing.T, what string, start charged, period int64) {
	t.Helper()
	if u.Reset < start.before+period-1 || u.Reset > start.after+period {
		t.Errorf("%s: Reset %d, want %d..%d", what, u.Reset, start.before+period-1, start.after+period)
	}
}

func (u charged) is(t *testing.T, what string, limit, remaining int64, reached bool, describe string) {
	t.Helper()
	if u.Limit != limit || u.Remaining != remaining || u.Reached != reached || u.Describe != describe {
		t.Errorf("%s: %+v, want limit %d remaining %d reached %v %q", what, u.Usage, limit, remaining, reached, describe)
	}
}

func newKey(prefix string) string { return prefix + model.RandomString(12, "abcdefghijklmnop") }

// TestChargeCostAndWindows pins what a charge spends and reports, on each store.
func TestChargeCostAndWindows(t *testing.T) {
	tiers, err := auth.ParseTiers("default=3-H,burst=100-H:5-M,tiny=2-H", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := charger{t: t, l: auth.NewLimiter(st, tiers)}
			const main = "3 requests per hour"

			// A cost that does not fit is refused without spending anything.
			k := newKey("cost")
			first := c.charge(k, "default", 2)
			first.is(t, "cost 2 of 3", 3, 1, false, main)
			first.resetIs(t, "cost 2 of 3", first, 3600)
			first.retryAfterIs(t, "cost 2 of 3", first.Reset)
			u := c.charge(k, "default", 2)
			u.is(t, "cost 2 with 1 left", 3, 1, true, main)
			u.resetIs(t, "cost 2 with 1 left", first, 3600)
			u.retryAfterIs(t, "cost 2 with 1 left", u.Reset)
			u = c.charge(k, "default", 1)
			u.is(t, "cost 1 with 1 left", 3, 0, false, main)
			u = c.charge(k, "default", 1)
			u.is(t, "cost 1 with 0 left", 3, 0, true, main)
			u.resetIs(t, "cost 1 with 0 left", first, 3600)
			u.retryAfterIs(t, "cost 1 with 0 left", u.Reset)

			// A cost equal to what remains fits.
			k = newKey("exact")
			c.charge(k, "default", 3).is(t, "cost 3 of 3", 3, 0, false, main)
			c.charge(k, "default", 1).is(t, "after the exact fit", 3, 0, true, main)

			// A cost below 1 is charged as 1.
			k = newKey("zero")
			c.charge(k, "default", 0).is(t, "cost 0", 3, 2, false, main)
			c.charge(k, "default", -5).is(t, "cost -5", 3, 1, false, main)

			// An unknown tier is the default tier, with the default tier's budget.
			k = newKey("unknown")
			c.charge(k, "nonexistent", 1).is(t, "unknown tier", 3, 2, false, main)
			c.charge(k, "default", 1).is(t, "default after unknown", 3, 1, false, main)
			c.charge(k, "", 1).is(t, "empty tier", 3, 0, false, main)
			// Another tier is another budget for the same key.
			c.charge(k, "tiny", 1).is(t, "tiny", 2, 1, false, "2 requests per hour")
		})
	}
}

// TestChargeBurst: the burst window is checked first, for any cost, and a
// refusal by it does not spend the main window; the usage reports the main
// window, and Retry-After the burst's.
func TestChargeBurst(t *testing.T) {
	tiers, err := auth.ParseTiers("default=3-H,burst=100-H:5-M", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := charger{t: t, l: auth.NewLimiter(st, tiers)}
			const main, burst = "100 requests per hour", "5 requests per minute (burst)"
			k := newKey("burst")
			first := c.charge(k, "burst", 3)
			first.is(t, "cost 3", 100, 97, false, main)
			first.resetIs(t, "cost 3", first, 3600)
			first.retryAfterIs(t, "cost 3", first.Reset)

			u := c.charge(k, "burst", 3)
			u.is(t, "cost 3 with 2 left in the burst", 100, 97, true, burst)
			u.resetIs(t, "cost 3 refused by the burst", first, 3600)
			if u.RetryAfter > 60 || u.RetryAfter < 55 {
				t.Errorf("refused by the burst: Retry-After %d, want about 60", u.RetryAfter)
			}

			c.charge(k, "burst", 2).is(t, "cost 2 with 2 left in the burst", 100, 95, false, main)
			u = c.charge(k, "burst", 1)
			u.is(t, "cost 1 with the burst spent", 100, 95, true, burst)
			if u.RetryAfter > 60 || u.RetryAfter < 55 {
				t.Errorf("refused by the burst: Retry-After %d, want about 60", u.RetryAfter)
			}
			c.charge(k, "burst", 2).is(t, "cost 2 with the burst spent", 100, 95, true, burst)

			// The main window refuses a cost it cannot fit even when the burst could.
			tiers2, err := auth.ParseTiers("default=4-H:3-M", nil)
			if err != nil {
				t.Fatal(err)
			}
			c2 := charger{t: t, l: auth.NewLimiter(st, tiers2)}
			k = newKey("mainfirst")
			c2.charge(k, "default", 2).is(t, "2 of 4 (burst 3)", 4, 2, false, "4 requests per hour")
			u = c2.charge(k, "default", 3)
			u.is(t, "3 with 2 left in the main window, 1 in the burst", 4, 2, true, "3 requests per minute (burst)")
		})
	}
}

// failingStore is a limiter store that is down.
type failingStore struct{ peekOnly bool }

var errStoreDown = errors.New("store down")

func (failingStore) Get(context.Context, string, limiter.Rate) (limiter.Context, error) {
	return limiter.Context{}, errStoreDown
}

func (f failingStore) Peek(context.Context, string, limiter.Rate) (limiter.Context, error) {
	return limiter.Context{}, errStoreDown
}

func (f failingStore) Increment(_ context.Context, _ string, n int64, r limiter.Rate) (limiter.Context, error) {
	if f.peekOnly {
		return limiter.Context{Limit: r.Limit, Remaining: r.Limit - n, Reset: time.Now().Add(r.Period).Unix()}, nil
	}
	return limiter.Context{}, errStoreDown
}

func (failingStore) Reset(context.Context, string, limiter.Rate) (limiter.Context, error) {
	return limiter.Context{}, errStoreDown
}

func TestChargeStoreDown(t *testing.T) {
	tiers, err := auth.ParseTiers("default=3-H,burst=100-H:5-M", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, peekOnly := range []bool{false, true} {
		l := auth.NewLimiter(failingStore{peekOnly: peekOnly}, tiers)
		for _, tier := range []string{"default", "burst"} {
			for _, cost := range []int64{1, 2} {
				u, err := l.Charge(t.Context(), "k", tier, cost)
				// With only Peek failing, a cost of 1 (which does not peek) goes through.
				if peekOnly && cost == 1 {
					if err != nil || u.Reached || u.Remaining != u.Limit-1 {
						t.Errorf("peek down, %s cost 1: %+v, %v", tier, u, err)
					}
					continue
				}
				if !errors.Is(err, errStoreDown) || !strings.HasPrefix(err.Error(), "rate limit: ") || u != (auth.Usage{}) {
					t.Errorf("peekOnly %v, %s cost %d: %+v, %v", peekOnly, tier, cost, u, err)
				}
			}
		}
	}
}

func TestNewRedisStoreErrors(t *testing.T) {
	if st, closeFn, err := auth.NewRedisStore(t.Context(), "http://127.0.0.1:6379/0"); err == nil || st != nil || closeFn != nil || !strings.HasPrefix(err.Error(), "redis url: ") {
		t.Errorf("bad url: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if st, closeFn, err := auth.NewRedisStore(ctx, "redis://127.0.0.1:1/0"); err == nil || st != nil || closeFn != nil || !strings.HasPrefix(err.Error(), "redis: ") {
		t.Errorf("no redis there: %v", err)
	}
}

func TestClientIP(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:1234":    "192.0.2.1",
		"[2001:db8::1]:443": "2001:db8::1",
		"192.0.2.1":         "192.0.2.1",
		"garbage":           "garbage",
		"":                  "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/incidents", nil)
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := auth.ClientIP(r); got != want {
			t.Errorf("%q: %q, want %q", addr, got, want)
		}
	}
}

// TestMiddleware: authenticated requests are charged to the principal in its
// tier, failed ones to the client IP in the default tier; headers on every
// answer; past the budget a rate-limit error with Retry-After.
func TestMiddleware(t *testing.T) {
	clock := &stepClock{now: t0}
	keys := openStore(t, clock).APIKeys()
	_, alice1 := issue(t, keys, model.APIKeyIssue{ActorID: "alice", Tier: "gold"})
	_, alice2 := issue(t, keys, model.APIKeyIssue{ActorID: "alice", Tier: "gold", Name: "second"})
	_, bob := issue(t, keys, model.APIKeyIssue{ActorID: "bob", Tier: "gold"})
	a := &auth.Authenticator{Keys: keys, Clock: clock}
	defer a.Close()
	tiers, err := auth.ParseTiers("default=2-H,gold=3-H", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := auth.NewLimiter(auth.NewMemoryStore(), tiers)

	type outcome struct {
		failErr error
		code    int
		header  http.Header
	}
	var failed error
	h := auth.Middleware(a, l, func(w http.ResponseWriter, r *http.Request, err error) {
		failed = err
		w.WriteHeader(http.StatusTeapot)
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := model.PrincipalFrom(r.Context())
		// A later charge may update the headers through ResponseHeader.
		auth.ResponseHeader(r.Context()).Set("X-Seen-Tenant", p.TenantID)
		w.WriteHeader(http.StatusNoContent)
	}))
	do := func(ip, header, value string) outcome {
		t.Helper()
		failed = nil
		r := httptest.NewRequest(http.MethodGet, "/v1/incidents", nil)
		r.RemoteAddr = ip + ":5555"
		if header != "" {
			r.Header.Set(header, value)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return outcome{failErr: failed, code: w.Code, header: w.Header()}
	}
	expect := func(what string, o outcome, code int, limit, remaining string, errCode model.Code) {
		t.Helper()
		errOK := errCode == "" && o.failErr == nil || errCode != "" && model.ErrorCode(o.failErr) == errCode
		if o.code != code || o.header.Get("X-RateLimit-Limit") != limit || o.header.Get("X-RateLimit-Remaining") != remaining || !errOK {
			t.Errorf("%s: %d, %v, %v; want %d, limit %s remaining %s, %q", what, o.code, o.header, o.failErr, code, limit, remaining, errCode)
		}
		reset, err := strconv.ParseInt(o.header.Get("X-RateLimit-Reset"), 10, 64)
		if now := time.Now().Unix(); err != nil || reset < now+3600-2 || reset > now+3600 {
			t.Errorf("%s: X-RateLimit-Reset %q, want about %d", what, o.header.Get("X-RateLimit-Reset"), now+3600)
		}
		if retry := o.header.Get("Retry-After"); (code == http.StatusTeapot && errCode == model.CodeRateLimited) != (retry != "") {
			t.Errorf("%s: Retry-After %q", what, retry)
		}
	}

	// Alice's two keys share one budget of the gold tier.
	o := do("192.0.2.1", "X-API-Key", alice1)
	expect("alice, key 1", o, http.StatusNoContent, "3", "2", "")
	if o.header.Get("X-Seen-Tenant") != "acme" {
		t.Errorf("the handler did not see the principal or the response headers: %v", o.header)
	}
	expect("alice, key 2", do("192.0.2.1", "X-API-Key", alice2), http.StatusNoContent, "3", "1", "")
	expect("alice, key 1 again", do("192.0.2.2", "Authorization", "Bearer "+alice1), http.StatusNoContent, "3", "0", "")
	o = do("192.0.2.1", "X-API-Key", alice2)
	expect("alice past the budget", o, http.StatusTeapot, "3", "0", model.CodeRateLimited)
	if o.failErr == nil || !strings.Contains(o.failErr.Error(), "Rate limit of 3 requests per hour exceeded") {
		t.Errorf("alice past the budget: %v", o.failErr)
	}
	if ra, err := strconv.Atoi(o.header.Get("Retry-After")); err != nil || ra < 3598 || ra > 3600 {
		t.Errorf("Retry-After %q", o.header.Get("Retry-After"))
	}
	// Bob's budget is his own, and the IP's is untouched by authenticated requests.
	expect("bob", do("192.0.2.1", "X-API-Key", bob), http.StatusNoContent, "3", "2", "")

	// Failed authentication is charged to the client IP, in the default tier.
	expect("bad key from .1", do("192.0.2.1", "X-API-Key", "nope"), http.StatusTeapot, "2", "1", model.CodeUnauthorized)
	expect("no key from .1", do("192.0.2.1", "", ""), http.StatusTeapot, "2", "0", model.CodeUnauthorized)
	expect("bad key from .3", do("192.0.2.3", "X-API-Key", "nope"), http.StatusTeapot, "2", "1", model.CodeUnauthorized)
	expect(".1 past the budget", do("192.0.2.1", "X-API-Key", bob[:10]), http.StatusTeapot, "2", "0", model.CodeRateLimited)
	// A good key from a throttled IP is not throttled: it has its own budget.
	expect("bob from .1", do("192.0.2.1", "X-API-Key", bob), http.StatusNoContent, "3", "1", "")

	// A limiter that fails is an internal error, and nothing is served.
	served := false
	down := auth.Middleware(a, auth.NewLimiter(failingStore{}, tiers), func(w http.ResponseWriter, r *http.Request, err error) {
		failed = err
		w.WriteHeader(http.StatusServiceUnavailable)
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = true }))
	for _, cred := range []string{bob, "nope"} {
		failed = nil
		r := httptest.NewRequest(http.MethodGet, "/v1/incidents", nil)
		r.Header.Set("X-API-Key", cred)
		w := httptest.NewRecorder()
		down.ServeHTTP(w, r)
		if served || model.ErrorCode(failed) != model.CodeInternal || !errors.Is(failed, errStoreDown) || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Errorf("limiter down, %q: served %v, %v, %v", cred, served, failed, w.Header())
		}
	}
	if h := auth.ResponseHeader(t.Context()); h != nil {
		t.Errorf("ResponseHeader outside a request: %v", h)
	}
}
