package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/incidentd/incidentd/auth"
)

// signedPayload signs a raw JSON payload with the monitoring secret, so that
// numbers no Go value marshals to (1e400, -0, huge integers) can be sent.
func signedPayload(secret, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	h := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc([]byte(payload))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc(mac.Sum(nil))
}

// Rule: exp and nbf are compared as numbers, never converted where they can
// wrap: a far-future exp is valid, a far-future nbf is not yet valid, a
// far-past one the reverse; what is not a finite number is refused.
func TestMonitoringTimeClaimsOutOfInt64(t *testing.T) {
	clock := &stepClock{now: time.Unix(2_000_000_000, 0)}
	general := &auth.Authenticator{Keys: openStore(t, clock).APIKeys(), Clock: clock, CacheTTL: time.Hour}
	defer general.Close()
	mon := general.ForMonitoring(&auth.MonitoringConfig{Secret: "dev", PayloadKey: "monitor", Tenant: "ops"})
	now := strconv.FormatInt(clock.Now().Unix(), 10)

	far := []string{"1e19", "1.8446744073709552e19", "9223372036854775807", "9223372036854775808",
		"18446744073709551616", "1e300", "1.7976931348623157e308", "9007199254740993"}
	past := []string{"-1e19", "-9223372036854775808", "-9223372036854775809", "-1e300", "-1.7976931348623157e308", "0", "-0"}
	accepted := map[string]bool{}
	for _, v := range far {
		accepted[`"exp":`+v] = true
		accepted[`"nbf":`+v] = false
	}
	for _, v := range past {
		accepted[`"exp":`+v] = false
		accepted[`"nbf":`+v] = true
	}
	// The boundaries: valid from nbf on, until (not at) exp.
	accepted[`"nbf":`+now] = true
	accepted[`"nbf":`+now+`.5`] = false
	accepted[`"exp":`+now] = false
	accepted[`"exp":`+now+`.5`] = true
	accepted[`"exp":`+now+`.5,"nbf":`+now] = true
	// Not finite numbers: JSON cannot carry NaN or infinities, so each of
	// these is refused, whatever it would have meant.
	for _, v := range []string{`"NaN"`, `"Infinity"`, `"-Infinity"`, `NaN`, `Infinity`, `1e400`, `-1e400`, `null`, `[1]`, `{}`} {
		accepted[`"exp":`+v] = false
		accepted[`"nbf":`+v] = false
	}
	for claims, want := range accepted {
		tok := signedPayload("dev", `{"monitor":"x",`+claims+`}`)
		p, err := mon.Authenticate(t.Context(), tok)
		switch {
		case want && (err != nil || p.ActorID != "monitoring"):
			t.Errorf("{%s}: refused: %v", claims, err)
		case !want && (p != nil || err == nil || err.Error() != badTokenMsg):
			t.Errorf("{%s}: %+v, %v; want refused", claims, p, err)
		}
	}
}
