package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/incidentd/incidentd/model"
)

// errForbiddenTarget is a dial refused by the SSRF guard.
var errForbiddenTarget = errors.New("webhook target is not a public address")

// newClient returns the HTTP client of deliveries. Unless allowPrivate, it
// refuses to connect to any address model.PublicAddr refuses, checked on
// the address actually dialled (after DNS resolution, so that a name that
// resolves, or is rebound, to a private address cannot slip through). It
// uses no proxy and follows no redirect (a 3xx is a failed attempt).
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errForbiddenTarget, address)
			}
			if !model.PublicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", errForbiddenTarget, ap.Addr())
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sign returns the webhook-signature header: one "v1,<base64>" per secret,
// space-separated.
func sign(secrets []string, msgID string, at time.Time, payload []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", fmt.Errorf("webhook secret: %w", err)
		}
		sig, err := wh.Sign(msgID, at, payload)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// maxDrain bounds what is read of an answer beyond its excerpt, so that the
// connection can be reused without reading an endless body.
const maxDrain = 64 << 10

// result is what one attempt learnt.
type result struct {
	status  int
	excerpt []byte
	err     error
	latency time.Duration
}

// post sends one signed attempt.
func (e *Engine) post(ctx context.Context, url, msgID string, secrets []string, payload []byte) result {
	start := time.Now()
	at := e.opt.Clock.Now()
	sig, err := sign(secrets, msgID, at, payload)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.opt.UserAgent)
	req.Header.Set(standardwebhooks.HeaderWebhookID, msgID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := e.client.Do(req)
	if err != nil {
		return result{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, model.MaxWebhookExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return result{status: resp.StatusCode, excerpt: excerpt, latency: time.Since(start)}
}
