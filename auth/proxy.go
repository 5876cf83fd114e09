package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type viaProxyKey struct{}

// ViaTrustedProxy reports whether r came through a trusted proxy, whose
// other forwarding headers (X-Forwarded-Proto, X-Forwarded-Host) may then
// be believed too.
func ViaTrustedProxy(r *http.Request) bool { v, _ := r.Context().Value(viaProxyKey{}).(bool); return v }

// ParseProxies reads a comma-separated list of addresses and CIDR
// prefixes (the load balancers in front of the server).
func ParseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR prefix", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// BehindProxies makes ClientIP the client's address when a request comes
// through trusted proxies: when the peer is one of them, the client is
// the right-most address of X-Forwarded-For that is not a trusted proxy
// (a client can forge the left part of the header, never what the
// proxies appended). Other peers' headers are ignored. With no proxies
// it changes nothing.
func BehindProxies(trusted []netip.Prefix) func(http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer, err := netip.ParseAddr(ClientIP(r))
			if err != nil || !isTrusted(peer) {
				next.ServeHTTP(w, r)
				return
			}
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				hop := strings.TrimSpace(hops[i])
				a, err := netip.ParseAddr(hop)
				if err != nil {
					ap, perr := netip.ParseAddrPort(hop) // some balancers add the port
					if perr != nil {
						break // a malformed hop: trust nothing left of it
					}
					a = ap.Addr()
				}
				if !isTrusted(a) {
					r2 := r.Clone(context.WithValue(r.Context(), viaProxyKey{}, true))
					r2.RemoteAddr = net.JoinHostPort(a.Unmap().String(), "0")
					next.ServeHTTP(w, r2)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
