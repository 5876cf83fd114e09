// Command example shows the generated Go client (clients/go/incidentd) at
// work, and how a receiver verifies an incidentd webhook (Standard Webhooks).
//
// Against a server, with INCIDENTD_URL and INCIDENTD_KEY (a key with
// incidents:write) set, it creates an incident, then pages through the
// incidents with cursors:
//
//	INCIDENTD_URL=http://127.0.0.1:8080 INCIDENTD_KEY=... go run ./clients/go/example -limit 5
//
// Webhooks: verifying a delivery needs only the endpoint's secret, the
// delivery's headers and its raw body. Verify a captured delivery:
//
//	INCIDENTD_WEBHOOK_SECRET=whsec_... go run ./clients/go/example \
//	    -webhook-headers headers.txt -webhook-body body.json
//
// (headers.txt holds one "Name: value" per line, webhook-id,
// webhook-timestamp and webhook-signature among them), or sign a sample
// payload with a fresh secret and verify it, a tampered copy being refused:
//
//	go run ./clients/go/example -webhook-self-check
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/oapi-codegen/nullable"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/incidentd/incidentd/clients/go/incidentd"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run is the whole program, so that tests run it in process against a real server.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	title := fs.String("title", "Example incident from the Go client", "title of the incident to create")
	limit := fs.Int("limit", 20, "page size (1..100) when listing incidents")
	secret := fs.String("webhook-secret", "", "the webhook endpoint's secret, whsec_... (default $INCIDENTD_WEBHOOK_SECRET)")
	headersFile := fs.String("webhook-headers", "", "file of a delivery's headers, one \"Name: value\" per line")
	bodyFile := fs.String("webhook-body", "", "file of a delivery's raw body")
	selfCheck := fs.Bool("webhook-self-check", false, "sign a sample payload with a fresh secret, verify it, and check that a tampered copy is refused")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: example [flags]  (INCIDENTD_URL and INCIDENTD_KEY select the API tour)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}

	did := false
	if url := getenv("INCIDENTD_URL"); url != "" {
		key := getenv("INCIDENTD_KEY")
		if key == "" {
			return errors.New("INCIDENTD_URL is set but INCIDENTD_KEY is not")
		}
		if err := tour(ctx, url, key, *title, *limit, stdout); err != nil {
			return err
		}
		did = true
	}
	if *selfCheck {
		if err := webhookSelfCheck(stdout); err != nil {
			return err
		}
		did = true
	}
	if *headersFile != "" || *bodyFile != "" {
		if *headersFile == "" || *bodyFile == "" {
			return errors.New("-webhook-headers and -webhook-body go together")
		}
		s := *secret
		if s == "" {
			s = getenv("INCIDENTD_WEBHOOK_SECRET")
		}
		if err := verifyDelivery(s, *headersFile, *bodyFile, stdout); err != nil {
			return err
		}
		did = true
	}
	if !did {
		fs.Usage()
		return flag.ErrHelp
	}
	return nil
}

// tour creates an incident, then lists every incident page by page,
// following pagination.nextCursor.
func tour(ctx context.Context, url, key, title string, limit int, out io.Writer) error {
	c, err := incidentd.NewClientWithResponses(url,
		incidentd.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}),
		// Any of X-API-Key, API-Key or Authorization: Bearer would do.
		incidentd.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("X-API-Key", key)
			return nil
		}))
	if err != nil {
		return err
	}

	tags := []string{"example", "go-client"}
	// With an Idempotency-Key a retry after a lost answer replays the first
	// answer instead of creating a second incident.
	idem := rand.Text()
	created, err := c.CreateIncidentWithResponse(ctx, &incidentd.CreateIncidentParams{IdempotencyKey: &idem}, incidentd.IncidentCreate{
		Title:      title,
		Severity:   incidentd.IncidentCreateSeverityHigh,
		OccurredAt: time.Now().UTC().Truncate(time.Second),
		Service:    nullable.NewNullableWithValue("example-service"),
		Tags:       &tags,
	})
	if err != nil {
		return fmt.Errorf("create incident: %w", err)
	}
	if created.JSON201 == nil {
		return fmt.Errorf("create incident: %w", problem(created.HTTPResponse, created.Body))
	}
	fmt.Fprintf(out, "created %s %q (%s, %s)\n", created.JSON201.Id, created.JSON201.Title, created.JSON201.Severity, created.JSON201.Status)

	params := &incidentd.ListIncidentsParams{Limit: &limit}
	total, pages := 0, 0
	for {
		page, err := c.ListIncidentsWithResponse(ctx, params)
		if err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		if page.JSON200 == nil {
			return fmt.Errorf("list incidents: %w", problem(page.HTTPResponse, page.Body))
		}
		pages++
		total += len(page.JSON200.Data)
		fmt.Fprintf(out, "page %d: %d incidents\n", pages, len(page.JSON200.Data))
		for _, inc := range page.JSON200.Data {
			fmt.Fprintf(out, "  %s %-8s %-13s %s\n", inc.Id, inc.Severity, inc.Status, inc.Title)
		}
		p := page.JSON200.Pagination
		if !p.HasMore {
			break
		}
		next, err := p.NextCursor.Get()
		if err != nil || next == "" {
			return errors.New("list incidents: hasMore without a nextCursor")
		}
		// A cursor goes back with the same filters and sort, and no offset.
		params.Cursor = &next
	}
	fmt.Fprintf(out, "listed %d incidents in %d pages\n", total, pages)
	return nil
}

// problem describes a refusal from its problem+json body (every error of
// the API is one), falling back to the status line.
func problem(r *http.Response, body []byte) error {
	var p incidentd.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Title == "" {
		return fmt.Errorf("HTTP %s: %.200s", r.Status, body)
	}
	msg := fmt.Sprintf("HTTP %d %s", p.Status, p.Title)
	if p.Detail != nil {
		msg += ": " + *p.Detail
	}
	if p.Details != nil {
		for _, d := range *p.Details {
			msg += fmt.Sprintf("; %s: %s", d.Field, d.Message)
		}
	}
	return fmt.Errorf("%s (request %s)", msg, p.RequestId)
}

// A sample delivery, shaped like an incident event (the exact payloads are
// the webhooks' own documentation's business; a signature covers any bytes).
const samplePayload = `{"type":"incident.created","timestamp":"2026-01-15T14:35:00Z","data":{"id":"inc_1a2b3c4d5e6f","title":"Database connection timeout in production","severity":"high","status":"open"}}`

func webhookSelfCheck(out io.Writer) error {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	h, body, err := sign(secret, "msg_example", time.Now(), []byte(samplePayload))
	if err != nil {
		return err
	}
	if err := verify(secret, h, body); err != nil {
		return fmt.Errorf("webhook self-check: a fresh signature does not verify: %w", err)
	}
	tampered := bytes.Replace(body, []byte(`"high"`), []byte(`"low"`), 1)
	if err := verify(secret, h, tampered); err == nil {
		return errors.New("webhook self-check: a tampered body verified")
	}
	fmt.Fprintln(out, "webhook self-check: signature valid, tampered body refused")
	return nil
}

// sign signs body as a sender does: the headers to send with it.
func sign(secret, id string, at time.Time, body []byte) (http.Header, []byte, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, nil, err
	}
	sig, err := wh.Sign(id, at, body)
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(at.Unix()))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return h, body, nil
}

// verify checks a delivery as a receiver must, before trusting its body: the
// signature over id, timestamp and the raw body (never a re-encoding of
// it), and a timestamp within five minutes, against replays.
func verify(secret string, h http.Header, body []byte) error {
	if secret == "" {
		return errors.New("no webhook secret (-webhook-secret or INCIDENTD_WEBHOOK_SECRET)")
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}

func verifyDelivery(secret, headersFile, bodyFile string, out io.Writer) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	hb, err := os.ReadFile(headersFile)
	if err != nil {
		return err
	}
	h, err := readHeaders(hb)
	if err != nil {
		return fmt.Errorf("%s: %w", headersFile, err)
	}
	if err := verify(secret, h, body); err != nil {
		return fmt.Errorf("webhook %s: signature refused: %w", h.Get(standardwebhooks.HeaderWebhookID), err)
	}
	fmt.Fprintf(out, "webhook %s: signature valid\n", h.Get(standardwebhooks.HeaderWebhookID))
	return nil
}

// readHeaders parses "Name: value" lines (a request line, blank lines and
// "#" comments are skipped), as a receiver might have logged them.
func readHeaders(b []byte) (http.Header, error) {
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "POST ") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("not a header line: %q", line)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)), strings.TrimSpace(value))
	}
	return h, sc.Err()
}
