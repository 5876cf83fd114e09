package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/oapi-codegen/nullable"

	"github.com/incidentd/incidentd/clients/go/incidentd"
	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
)

// The Go example against a real server: each run creates an incident and
// lists them all through cursors; the last run must see every incident
// created, each once, in ceil(n/limit) pages.
func TestGoExampleTour(t *testing.T) {
	url, key := serve(t)
	env := envOf("INCIDENTD_URL", url, "INCIDENTD_KEY", key)
	const runs, limit = 5, 2
	var created []string
	var out string
	for i := 1; i <= runs; i++ {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-limit", fmt.Sprint(limit), "-title", fmt.Sprintf("Go example %d", i)}, env, &stdout, &stderr)
		if err != nil {
			t.Fatalf("run %d: %v\n%s%s", i, err, stdout.String(), stderr.String())
		}
		out = stdout.String()
		created = append(created, createdID(t, out))
		wantListed(t, out, i, (i+limit-1)/limit)
	}
	wantEachOnce(t, out, created)
}

// The generated client's PATCH: nullable.Nullable sends an explicit null,
// which clears a field (a *string with omitempty could only leave it out),
// and If-Match takes the ETag of a GET; a stale one is a 412.
func TestGoClientPatch(t *testing.T) {
	url, key := serve(t)
	ctx := context.Background()
	c, err := incidentd.NewClientWithResponses(url, incidentd.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-API-Key", key)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateIncidentWithResponse(ctx, nil, incidentd.IncidentCreate{
		Title: "Patched by the Go client", Severity: incidentd.IncidentCreateSeverityLow,
		OccurredAt: time.Now().UTC().Truncate(time.Second), Description: nullable.NewNullableWithValue("to be cleared"),
	})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("create: %v %s", err, created.Body)
	}
	id := created.JSON201.Id
	got, err := c.GetIncidentWithResponse(ctx, id, nil)
	if err != nil || got.JSON200 == nil || got.Headers200 == nil || got.Headers200.ETag == nil {
		t.Fatalf("get: %v %s", err, got.Body)
	}
	if d, _ := got.JSON200.Description.Get(); d != "to be cleared" {
		t.Fatalf("description %q", d)
	}
	etag := *got.Headers200.ETag

	patched, err := c.UpdateIncidentWithResponse(ctx, id, &incidentd.UpdateIncidentParams{IfMatch: &etag},
		incidentd.IncidentPatch{Description: nullable.NewNullNullable[string]()})
	if err != nil || patched.JSON200 == nil {
		t.Fatalf("patch: %v %d %s", err, patched.StatusCode(), patched.Body)
	}
	if d, err := patched.JSON200.Description.Get(); err == nil {
		t.Fatalf("description %q after a PATCH with null, want none", d)
	}

	stale, err := c.UpdateIncidentWithResponse(ctx, id, &incidentd.UpdateIncidentParams{IfMatch: &etag},
		incidentd.IncidentPatch{Title: ptr("Too late")})
	if err != nil || stale.ApplicationproblemJSON412 == nil {
		t.Fatalf("a stale If-Match: %v %d %s, want 412", err, stale.StatusCode(), stale.Body)
	}
}

func ptr[T any](v T) *T { return &v }

// A refusal is reported from its problem+json body.
func TestGoExampleRefusal(t *testing.T) {
	url, _ := serve(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), nil, envOf("INCIDENTD_URL", url, "INCIDENTD_KEY", "not-a-key"), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized") || !strings.Contains(err.Error(), "(request ") {
		t.Fatalf("err = %v, want the 401 problem with its request id", err)
	}
}

func TestGoExampleWebhook(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	dir := t.TempDir()
	headers, body := delivery(t, dir, secret, []byte(samplePayload))
	tampered := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(tampered, bytes.Replace([]byte(samplePayload), []byte("high"), []byte("low"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.txt")
	h, _, err := sign(secret, "msg_stale", time.Now().Add(-time.Hour), []byte(samplePayload))
	if err != nil {
		t.Fatal(err)
	}
	writeHeaderFile(t, stale, h)

	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		want string // in stdout, or in the error when wantErr
		err  bool
	}{
		{"self-check", []string{"-webhook-self-check"}, envOf(), "webhook self-check: signature valid, tampered body refused", false},
		{"valid", []string{"-webhook-headers", headers, "-webhook-body", body}, envOf("INCIDENTD_WEBHOOK_SECRET", secret), "webhook msg_test: signature valid", false},
		{"secret flag", []string{"-webhook-secret", secret, "-webhook-headers", headers, "-webhook-body", body}, envOf(), "signature valid", false},
		{"tampered", []string{"-webhook-headers", headers, "-webhook-body", tampered}, envOf("INCIDENTD_WEBHOOK_SECRET", secret), "no matching signature", true},
		{"other secret", []string{"-webhook-secret", "whsec_" + strings.Repeat("A", 32), "-webhook-headers", headers, "-webhook-body", body}, envOf(), "no matching signature", true},
		{"replayed", []string{"-webhook-headers", stale, "-webhook-body", body}, envOf("INCIDENTD_WEBHOOK_SECRET", secret), "too old", true},
		{"no secret", []string{"-webhook-headers", headers, "-webhook-body", body}, envOf(), "no webhook secret", true},
		{"body alone", []string{"-webhook-body", body}, envOf(), "go together", true},
		{"nothing to do", nil, envOf(), flag.ErrHelp.Error(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, tc.env, &stdout, &stderr)
			switch {
			case tc.err && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			case !tc.err && err != nil:
				t.Fatalf("err = %v\n%s", err, stderr.String())
			case !tc.err && !strings.Contains(stdout.String(), tc.want):
				t.Fatalf("stdout %q, want %q", stdout.String(), tc.want)
			}
		})
	}
}

// The TypeScript example (clients/ts/example.ts, compiled by the locked tsc,
// so that it is type-checked against the generated schema) against a real
// server, and verifying a delivery the Go library signed.
func TestTypeScriptExample(t *testing.T) {
	ts, _ := filepath.Abs(filepath.Join("..", "..", "ts"))
	tsc := filepath.Join(ts, "node_modules", "typescript", "bin", "tsc")
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(tsc); err != nil || serr != nil {
		msg := "node or clients/ts/node_modules missing: TypeScript client example skipped (run npm ci in clients/ts)"
		if os.Getenv("TS_REQUIRED") != "" {
			t.Fatal(msg + "; TS_REQUIRED is set")
		}
		t.Skip(msg)
	}
	// Inside clients/ts, so that node finds clients/ts/node_modules.
	build, err := os.MkdirTemp(ts, ".build-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(build) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := command(ctx, ts, nil, node, tsc, "-p", "tsconfig.json", "--outDir", build); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
	example := filepath.Join(build, "example.js")

	url, key := serve(t)
	env := []string{"INCIDENTD_URL=" + url, "INCIDENTD_KEY=" + key}
	const runs, limit = 3, 2
	var created []string
	var out string
	for i := 1; i <= runs; i++ {
		out, err = command(ctx, ts, env, node, example, "--limit", fmt.Sprint(limit), "--title", fmt.Sprintf("TS example %d", i))
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		created = append(created, createdID(t, out))
		wantListed(t, out, i, (i+limit-1)/limit)
	}
	wantEachOnce(t, out, created)

	if out, err := command(ctx, ts, nil, node, example, "--webhook-self-check"); err != nil || !strings.Contains(out, "webhook self-check: signature valid, tampered body refused") {
		t.Fatalf("self-check: %v\n%s", err, out)
	}

	// Signed by the Go library, verified by the TypeScript one.
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	dir := t.TempDir()
	headers, body := delivery(t, dir, secret, []byte(samplePayload))
	wh := []string{"INCIDENTD_WEBHOOK_SECRET=" + secret}
	if out, err := command(ctx, ts, wh, node, example, "--webhook-headers", headers, "--webhook-body", body); err != nil || !strings.Contains(out, "webhook msg_test: signature valid") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(tampered, bytes.Replace([]byte(samplePayload), []byte("high"), []byte("low"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := command(ctx, ts, wh, node, example, "--webhook-headers", headers, "--webhook-body", tampered); err == nil || !strings.Contains(out, "signature refused") {
		t.Fatalf("a tampered body: err %v, want a refusal\n%s", err, out)
	}
}

// serve starts a server and returns the address of a proxy before it that
// checks each request the example sends and each response it gets against
// the OpenAPI document, and a key with incidents:write in a fresh tenant.
func serve(t *testing.T) (url, key string) {
	s := apitest.Start(t, apitest.Backends(t)[0], apitest.Config{})
	key = s.Key(apitest.Tenant("clients"), model.ScopeIncidentsWrite)
	r, err := docRouter()
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		if err := checkRequest(r, req, body); err != nil {
			t.Errorf("%s %s: the client's request breaks the OpenAPI contract: %v\nbody: %.300s", req.Method, req.URL, err, body)
		}
		out, err := http.NewRequestWithContext(req.Context(), req.Method, s.URL+req.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		out.Header = req.Header.Clone()
		res, err := http.DefaultClient.Do(out)
		if err != nil {
			t.Errorf("proxy: %v", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		if err := apitest.CheckContract(out, &apitest.Response{Status: res.StatusCode, Header: res.Header, Body: raw}); err != nil {
			t.Errorf("%s %s -> %d breaks the OpenAPI contract: %v\nbody: %.300s", req.Method, req.URL, res.StatusCode, err, raw)
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		w.Write(raw)
	}))
	t.Cleanup(p.Close)
	return p.URL, key
}

var (
	routerOnce sync.Once
	router     routers.Router
	routerErr  error
)

func docRouter() (routers.Router, error) {
	routerOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(rest.OpenAPIYAML)
		if err != nil {
			routerErr = err
			return
		}
		doc.Servers = nil // match paths alone: the test servers listen on random ports
		router, routerErr = legacy.NewRouter(doc)
	})
	return router, routerErr
}

// checkRequest validates what a generated client sent: path, parameters,
// content type and body.
func checkRequest(r routers.Router, req *http.Request, body []byte) error {
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := r.FindRoute(probe)
	if err != nil {
		return fmt.Errorf("no documented route: %w", err)
	}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var createdRE = regexp.MustCompile(`(?m)^created (inc_\S+) `)

func createdID(t *testing.T, out string) string {
	t.Helper()
	m := createdRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no created incident in:\n%s", out)
	}
	return m[1]
}

func wantListed(t *testing.T, out string, n, pages int) {
	t.Helper()
	if want := fmt.Sprintf("listed %d incidents in %d pages\n", n, pages); !strings.Contains(out, want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

// wantEachOnce: every incident created appears once in the last listing,
// so that no cursor skipped or repeated one.
func wantEachOnce(t *testing.T, out string, ids []string) {
	t.Helper()
	for _, id := range ids {
		if n := strings.Count(out, "  "+id+" "); n != 1 {
			t.Errorf("%s listed %d times:\n%s", id, n, out)
		}
	}
}

// delivery writes a delivery of body signed with secret now, as a
// receiver would log it: the headers file and the raw body file.
func delivery(t *testing.T, dir, secret string, body []byte) (headers, bodyFile string) {
	t.Helper()
	h, b, err := sign(secret, "msg_test", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Content-Type", "application/json")
	headers, bodyFile = filepath.Join(dir, "headers.txt"), filepath.Join(dir, "body.json")
	writeHeaderFile(t, headers, h)
	if err := os.WriteFile(bodyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return headers, bodyFile
}

func writeHeaderFile(t *testing.T, path string, h http.Header) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("POST /hooks/incidentd HTTP/1.1\n# logged by the receiver\n")
	if err := h.Write(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// The caller's environment, less any INCIDENTD_ settings of its own.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INCIDENTD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), fmt.Errorf("%s: %w", filepath.Base(args[0]), err)
	}
	return string(out), err
}
