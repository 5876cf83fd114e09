package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signHS256 signs the already-encoded header and payload parts.
func signHS256(header, payload, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(header + "." + payload))
	return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyHS256(t *testing.T) {
	hs := b64(`{"alg":"HS256","typ":"JWT"}`)
	body := b64(`{"monitor":"yes"}`)
	good := signHS256(hs, body, "dev")
	payload, ok := verifyHS256(good, []byte("dev"))
	if !ok || string(payload) != `{"monitor":"yes"}` {
		t.Fatalf("valid token: %q, %v", payload, ok)
	}
	goodSig := good[len(hs)+1+len(body)+1:]
	refused := map[string]string{
		"two parts":            hs + "." + body,
		"four parts":           good + ".x",
		"header not base64":    signHS256("@@@", body, "dev"),
		"header not JSON":      signHS256(b64(`HS256`), body, "dev"),
		"alg none":             signHS256(b64(`{"alg":"none"}`), body, "dev"),
		"alg HS512":            signHS256(b64(`{"alg":"HS512"}`), body, "dev"),
		"alg lower case":       signHS256(b64(`{"alg":"hs256"}`), body, "dev"),
		"no alg":               signHS256(b64(`{"typ":"JWT"}`), body, "dev"),
		"signature not base64": hs + "." + body + ".@@" + goodSig,
		"empty signature":      hs + "." + body + ".",
		"wrong secret":         signHS256(hs, body, "prod"),
		"signature of another": hs + "." + b64(`{"monitor":"no"}`) + "." + goodSig,
		"truncated signature":  good[:len(good)-2],
		"payload not base64":   signHS256(hs, "@@@", "dev"),
	}
	for name, tok := range refused {
		if p, ok := verifyHS256(tok, []byte("dev")); ok {
			t.Errorf("%s: accepted (%q)", name, p)
		}
	}
}

// TestMonitoringAuthenticateDirect checks the token rules without the
// fallback to the general authenticator, which hides which rule refused.
func TestMonitoringAuthenticateDirect(t *testing.T) {
	m := &MonitoringConfig{Secret: "dev", PayloadKey: "monitor", Tenant: "ops"}
	hs := b64(`{"alg":"HS256"}`)
	now := time.Unix(2_000_000_000, 0)
	cases := []struct {
		payload string
		ok      bool
	}{
		{`{"monitor":1}`, true},
		{`{"other":1}`, false},
		{`not json`, false},
		{`["monitor"]`, false},
		{`{"monitor":1,"exp":2000000001}`, true},
		{`{"monitor":1,"exp":2000000000}`, false},
		{`{"monitor":1,"exp":1999999999}`, false},
		{`{"monitor":1,"exp":"2100000000"}`, false},
		{`{"monitor":1,"nbf":2000000000}`, true},
		{`{"monitor":1,"nbf":1999999999}`, true},
		{`{"monitor":1,"nbf":2000000001}`, false},
		{`{"monitor":1,"nbf":"0"}`, false},
		{`{"monitor":1,"nbf":2000000000,"exp":2000000001}`, true},
	}
	for _, c := range cases {
		for _, at := range []time.Time{now, now.Add(999 * time.Millisecond)} {
			p, err := m.authenticate(t.Context(), signHS256(hs, b64(c.payload), "dev"), at)
			if c.ok {
				if err != nil || p == nil || p.TenantID != "ops" || p.ActorID != "monitoring" {
					t.Errorf("%s at %v: %+v, %v", c.payload, at, p, err)
				}
				continue
			}
			if p != nil || err != errBadMonitoringToken {
				t.Errorf("%s at %v: %+v, %v; want %v", c.payload, at, p, err, errBadMonitoringToken)
			}
		}
	}
}

// mapKeys is an in-memory key store that knows every prefix.
type mapKeys struct {
	mu      sync.Mutex
	lookups map[string]int
}

func (k *mapKeys) IssueAPIKey(context.Context, model.APIKeyIssue) (*model.APIKey, string, error) {
	panic("not used")
}

func (k *mapKeys) APIKeyByPrefix(_ context.Context, prefix string) (*model.APIKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lookups[prefix]++
	return &model.APIKey{ID: "key_" + prefix, Prefix: prefix}, nil
}

func (k *mapKeys) TouchAPIKey(context.Context, string, time.Time) error { return nil }

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// TestKeyCacheBound: the cache holds at most maxCachedKeys keys; the one
// that would exceed the bound starts a fresh cache.
func TestKeyCacheBound(t *testing.T) {
	keys := &mapKeys{lookups: map[string]int{}}
	a := &Authenticator{Keys: keys, Clock: fixedClock(time.Unix(2_000_000_000, 0)), CacheTTL: time.Hour}
	for i := range maxCachedKeys {
		if _, err := a.lookup(t.Context(), strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.cache); n != maxCachedKeys {
		t.Fatalf("%d cached, want %d", n, maxCachedKeys)
	}
	k, err := a.lookup(t.Context(), "0")
	if err != nil || k.Prefix != "0" || keys.lookups["0"] != 1 {
		t.Fatalf("key 0 from a full cache: %+v, %v, %d lookups", k, err, keys.lookups["0"])
	}
	if _, err := a.lookup(t.Context(), "one-more"); err != nil {
		t.Fatal(err)
	}
	if n := len(a.cache); n != 1 {
		t.Errorf("%d cached after exceeding the bound, want 1 (a fresh cache)", n)
	}
	if _, err := a.lookup(t.Context(), "0"); err != nil || keys.lookups["0"] != 2 {
		t.Errorf("key 0 after the refill: %v, %d lookups, want 2", err, keys.lookups["0"])
	}
	if _, ok := a.cache["one-more"]; !ok {
		t.Errorf("the key that started the fresh cache is not in it")
	}
}
