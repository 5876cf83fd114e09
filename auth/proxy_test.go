package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBehindProxies: the client address comes from X-Forwarded-For only
// through a trusted peer, and is the right-most untrusted hop (what the
// trusted proxies appended), never what the client wrote left of it.
func TestBehindProxies(t *testing.T) {
	trusted, err := ParseProxies("10.0.0.0/8, 192.168.1.5,::1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseProxies("10.0.0.0/8,nope"); err == nil {
		t.Error("a bad entry was accepted")
	}
	var got string
	h := BehindProxies(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientIP(r) }))
	for _, c := range []struct {
		peer, xff, want string
	}{
		{"10.1.2.3:5000", "203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:5000", "1.1.1.1, 203.0.113.9", "203.0.113.9"},           // the client forged 1.1.1.1
		{"10.1.2.3:5000", "1.1.1.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, // two proxies
		{"192.168.1.5:80", "2001:db8::1", "2001:db8::1"},                   // an exact address
		{"[::1]:80", "198.51.100.7", "198.51.100.7"},                       // IPv6 peer
		{"198.51.100.1:5000", "203.0.113.9", "198.51.100.1"},               // an untrusted peer: ignored
		{"10.1.2.3:5000", "", "10.1.2.3"},                                  // no header: the proxy itself
		{"10.1.2.3:5000", "garbage, 10.0.0.1", "10.1.2.3"},                 // malformed: trust nothing
		{"10.1.2.3:5000", "10.0.0.1, 10.0.0.2", "10.1.2.3"},                // all trusted
		{"10.1.2.3:5000", "203.0.113.7:51234", "203.0.113.7"},              // a hop with its port
		{"10.1.2.3:5000", "[2001:db8::1]:443", "2001:db8::1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	// Without trusted proxies nothing changes.
	plain := BehindProxies(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientIP(r) }))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	plain.ServeHTTP(httptest.NewRecorder(), r)
	if got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %s", got)
	}
}
