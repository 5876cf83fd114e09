package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

// MonitoringConfig enables the monitoring contract's shared-secret token for the monitoring
// endpoints: an HS256 JWT signed with Secret whose payload holds a claim named
// PayloadKey acts in Tenant with component and incident write scopes, so
// that an existing monitoring setup can post unchanged.
type MonitoringConfig struct {
	Secret     string // MONITORING_SECRET_KEY
	PayloadKey string // MONITORING_PAYLOAD_KEY
	Tenant     string // MONITORING_TENANT
}

// Enabled reports whether the monitoring token is configured.
func (m *MonitoringConfig) Enabled() bool {
	return m != nil && m.Secret != "" && m.PayloadKey != "" && m.Tenant != ""
}

var errBadMonitoringToken = model.Unauthorized("Invalid monitoring token")

// authenticateMonitoring verifies a monitoring token: HS256 only, the
// configured secret, the payload claim present, and exp when it is given.
func (m *MonitoringConfig) authenticate(_ context.Context, raw string, now time.Time) (*model.Principal, error) {
	payload, ok := verifyHS256(raw, []byte(m.Secret))
	if !ok {
		return nil, errBadMonitoringToken
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errBadMonitoringToken
	}
	if _, ok := claims[m.PayloadKey]; !ok {
		return nil, errBadMonitoringToken
	}
	// The claims are compared as floats, in whole seconds of now: a claim
	// converted to int64 wraps beyond its range (nbf 1e19 became the minimum
	// int64, valid at once; exp 1e19 likewise, expired at once). now.Unix()
	// is exact as a float64 for any clock this runs under (< 2^53 s).
	sec := float64(now.Unix())
	for name, past := range map[string]bool{"exp": true, "nbf": false} {
		v, present := claims[name]
		if !present {
			continue
		}
		t, ok := v.(float64)
		// JSON has no NaN or infinity, but a NaN would pass both comparisons.
		if !ok || math.IsNaN(t) || math.IsInf(t, 0) || (past && sec >= t) || (!past && sec < t) {
			return nil, errBadMonitoringToken
		}
	}
	return &model.Principal{
		TenantID: m.Tenant,
		ActorID:  "monitoring",
		Scopes: []model.Scope{model.ScopeComponentsWrite, model.ScopeIncidentsWrite,
			model.ScopeComponentsRead, model.ScopeIncidentsRead},
		Tier:         DefaultTier,
		CredentialID: "monitoring",
	}, nil
}

// ForMonitoring returns an authenticator for the monitoring endpoints: it
// accepts everything a accepts, plus the monitoring token.
func (a *Authenticator) ForMonitoring(m *MonitoringConfig) *Authenticator {
	if !m.Enabled() {
		return a
	}
	return &Authenticator{Keys: a.Keys, Clock: a.Clock, OIDC: a.OIDC, CacheTTL: a.CacheTTL, monitoring: m, parent: a}
}

// verifyHS256 checks a compact JWS signed with HMAC-SHA256 and returns its
// payload. It is hand-rolled because the monitoring contract's secrets are short ("dev"),
// which JOSE libraries rightly refuse; the header must say HS256 and nothing
// else, so that no other algorithm (none included) can slip through.
func verifyHS256(token string, secret []byte) ([]byte, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(rawHeader, &header) != nil || header.Alg != "HS256" {
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	return payload, err == nil
}
