package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// These tests hold deploy/compose.yaml, deploy/haproxy.cfg and the Dockerfile
// to the binary: no container runtime is needed (nor, in CI, reachable), so
// each container's command and environment are run here as a process of
// this very binary, the way the runtime would start it.

// composeHelperEnv marks a child process started by startContainerProcess:
// it runs the command after "--" and exits instead of running the tests.
const composeHelperEnv = "INCIDENTD_COMPOSE_TEST_CHILD"

// TestComposeHelperProcess is not a test: it is the entry point of the child
// processes below (the standard os/exec pattern), so that a child is this
// package's main built with the test's flags (-race included) and gets an
// environment of its own, as a container does.
func TestComposeHelperProcess(t *testing.T) {
	if os.Getenv(composeHelperEnv) != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	if err := run(context.Background(), args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "incidentd:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// containerProcess is one child started by startContainerProcess.
type containerProcess struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited; err is then set
	err    error
	waited bool // the test waited for it to exit by itself
}

// startContainerProcess runs incidentd with args and only env (a container
// sees its image's and compose's variables, not the test's), and stops it
// with SIGTERM, as `docker stop` does, when the test ends.
func startContainerProcess(t *testing.T, args []string, env map[string]string) *containerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestComposeHelperProcess$", "--"}, args...)...)
	cmd.Env = []string{composeHelperEnv + "=1"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The child's coverage and race settings are the run's.
	for _, k := range []string{"GOCOVERDIR", "GORACE", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	p := &containerProcess{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// wait waits for the process to exit by itself (a one-shot command).
func (p *containerProcess) wait(t *testing.T) error {
	t.Helper()
	p.waited = true
	select {
	case <-p.exited:
		return p.err
	case <-time.After(2 * time.Minute):
		t.Fatalf("%v did not exit; stderr:\n%s", p.cmd.Args[3:], p.stderr.String())
		return nil
	}
}

// stop sends SIGTERM to a server and expects a clean exit (serve's graceful
// shutdown); a one-shot command the test waited for was judged already.
func (p *containerProcess) stop(t *testing.T) {
	t.Helper()
	if p.waited {
		return
	}
	p.waited = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		// A test that failed already may stop servers mid-start, which
		// then exit with "context canceled": only a clean run is judged.
		if p.err != nil && !t.Failed() {
			t.Errorf("%v after SIGTERM: %v\n%s", p.cmd.Args[3:], p.err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%v ignored SIGTERM for 30s", p.cmd.Args[3:])
	}
}

// listenAddr waits for serve's "incidentd listening" line (JSON or text
// logs, whichever the environment chose) and returns the address.
func (p *containerProcess) listenAddr(t *testing.T) string {
	t.Helper()
	text := regexp.MustCompile(`msg="incidentd listening" addr=(\S+)`)
	var addr string
	waitFor(t, "incidentd to listen", func() bool {
		for _, l := range p.stderr.lines() {
			if l["msg"] == "incidentd listening" {
				addr, _ = l["addr"].(string)
			}
		}
		if m := text.FindStringSubmatch(p.stderr.String()); m != nil {
			addr = m[1]
		}
		select {
		case <-p.exited:
			p.waited = true
			t.Fatalf("%v exited before listening: %v\n%s", p.cmd.Args[3:], p.err, p.stderr.String())
		default:
		}
		return addr != ""
	})
	return addr
}

// httpStatus is the status of GET url (with an API key when key is set).
func httpStatus(t *testing.T, url, key string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// composeFile is the part of deploy/compose.yaml the tests read. Commands
// and environments must be in list and map form: the string forms would be
// split by a shell-like parser the tests do not reproduce.
type composeFile struct {
	Services map[string]composeService `json:"services"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       any               `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
}

// readCompose parses deploy/compose.yaml (anchors and merge keys resolved).
func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return c
}

// replicas are the compose services that run `serve`, by name, sorted.
func (c composeFile) replicas() []string {
	var names []string
	for name, s := range c.Services {
		if len(s.Command) > 0 && s.Command[0] == "serve" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestComposeFile checks deploy/compose.yaml's shape: two replicas of one
// image, started after a migrate service of the same image has succeeded,
// on PostgreSQL and Redis services with health checks, configured by the
// variables the README documents.
func TestComposeFile(t *testing.T) {
	c := readCompose(t)
	replicas := c.replicas()
	if len(replicas) != 2 {
		t.Fatalf("replicas (services whose command is serve): %v, want two", replicas)
	}
	migrate, ok := c.Services["migrate"]
	if !ok || !slices.Equal(migrate.Command, []string{"migrate"}) {
		t.Fatalf("want a migrate service with command [migrate], got %+v", migrate)
	}
	if migrate.Image == "" || migrate.Build == nil {
		t.Errorf("migrate: image %q, build %v: want both (the image the replicas use, built from the Dockerfile)", migrate.Image, migrate.Build)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if s, ok := c.Services[dep]; !ok || s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s: missing, or without a health check for the replicas to wait on", dep)
		}
	}
	if d, ok := migrate.DependsOn["postgres"]; !ok || d.Condition != "service_healthy" {
		t.Errorf("migrate depends_on postgres: %+v, want condition service_healthy", migrate.DependsOn)
	}
	for _, name := range replicas {
		r := c.Services[name]
		if r.Image != migrate.Image || !reflect.DeepEqual(r.Build, migrate.Build) {
			t.Errorf("%s: image %q build %v, want migrate's %q %v (one image for all)", name, r.Image, r.Build, migrate.Image, migrate.Build)
		}
		if !slices.Equal(r.Command, []string{"serve"}) {
			t.Errorf("%s: command %v, want [serve]", name, r.Command)
		}
		if d := r.DependsOn["migrate"]; d.Condition != "service_completed_successfully" {
			t.Errorf("%s: depends_on migrate %q, want service_completed_successfully", name, d.Condition)
		}
		for _, dep := range []string{"postgres", "redis"} {
			if d := r.DependsOn[dep]; d.Condition != "service_healthy" {
				t.Errorf("%s: depends_on %s %q, want service_healthy", name, dep, d.Condition)
			}
		}
		if !reflect.DeepEqual(r.Environment, migrate.Environment) {
			t.Errorf("%s: environment differs from migrate's:\n%v\n%v", name, r.Environment, migrate.Environment)
		}
		env := r.Environment
		want := map[string]string{"INCIDENTD_ADDR": "0.0.0.0:8080", "INCIDENTD_LOG_FORMAT": "json"}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", name, k, env[k], v)
			}
		}
		if u, err := url.Parse(env["DATABASE_URL"]); err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" {
			t.Errorf("%s: DATABASE_URL %q, want postgres://...@postgres:5432/... (SQLite is for one instance)", name, env["DATABASE_URL"])
		}
		if u, err := url.Parse(env["REDIS_URL"]); err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
			t.Errorf("%s: REDIS_URL %q, want redis://redis:6379/N (one rate budget for all replicas)", name, env["REDIS_URL"])
		}
	}
	lb, ok := c.Services["lb"]
	if !ok || !strings.Contains(lb.Image, "haproxy:") {
		t.Errorf("want an lb service on the haproxy image, got %+v", lb)
	}
}

// TestHAProxyConfig checks that deploy/haproxy.cfg balances exactly the
// compose file's replicas on the port they listen on, health-checks them
// with /readyz, and keeps WebSockets and SSE streams open.
func TestHAProxyConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	// Directives by section, comments dropped and spaces collapsed.
	sections := map[string][]string{}
	var section string
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			section = strings.Join(fields, " ")
			continue
		}
		sections[section] = append(sections[section], strings.Join(fields, " "))
	}
	backend := sections["backend incidentd"]
	if backend == nil {
		t.Fatalf("no backend incidentd in haproxy.cfg: %v", sections)
	}
	var servers []string
	for _, d := range backend {
		if f := strings.Fields(d); f[0] == "server" {
			if len(f) < 3 {
				t.Fatalf("server line %q", d)
			}
			servers = append(servers, f[2])
		}
	}
	var want []string
	for _, r := range readCompose(t).replicas() {
		want = append(want, r+":8080")
	}
	slices.Sort(servers)
	if !slices.Equal(servers, want) {
		t.Errorf("haproxy servers %v, want the compose replicas %v", servers, want)
	}
	for _, d := range []string{"option httpchk", "http-check send meth GET uri /readyz", "http-check expect status 200"} {
		if !slices.Contains(backend, d) {
			t.Errorf("backend incidentd lacks %q (the replicas' health check)", d)
		}
	}
	if !slices.ContainsFunc(backend, func(d string) bool { return strings.HasPrefix(d, "default-server check ") }) {
		t.Errorf("backend incidentd: no `default-server check ...`: the servers would not be checked")
	}
	defaults := sections["defaults"]
	for _, k := range []string{"timeout tunnel", "timeout client", "timeout server"} {
		i := slices.IndexFunc(defaults, func(d string) bool { return strings.HasPrefix(d, k+" ") })
		if i < 0 {
			t.Errorf("defaults: no %s", k)
			continue
		}
		// Streams send a keep-alive every 15s; a timeout under a minute
		// would cut quiet ones short on a slow network.
		if d, err := time.ParseDuration(strings.TrimPrefix(defaults[i], k+" ")); err != nil || d < time.Minute {
			t.Errorf("defaults: %q, want a duration of a minute or more", defaults[i])
		}
	}
	// Any of these would buffer or rewrite SSE responses.
	for _, bad := range []string{"compression", "option http-buffer-request", "cache"} {
		for name, ds := range sections {
			if slices.ContainsFunc(ds, func(d string) bool { return strings.HasPrefix(d, bad) }) {
				t.Errorf("%s: %q would hold back server-sent events", name, bad)
			}
		}
	}
}

// TestComposeReplicasRun runs the compose file's containers as processes:
// migrate with its command and environment, which must succeed, then both
// replicas with theirs, which must answer /readyz with 200 and serve an API
// key created the way the README says (`docker compose run migrate apikey
// create ...`). The compose hostnames give way to the test's PostgreSQL and
// Redis, and 0.0.0.0:8080 to free ports on the loopback.
func TestComposeReplicasRun(t *testing.T) {
	dbURL, redisURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || redisURL == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL are both needed to run the compose replicas (PostgreSQL and Redis, as compose runs them); skipped")
	}
	c := readCompose(t)
	replicas := c.replicas()
	if len(replicas) != 2 {
		t.Fatalf("replicas %v, want two (TestComposeFile says more)", replicas)
	}
	image := dockerfileImage(t)
	envOf := func(service string) map[string]string {
		env := mergeEnv(image.env, c.Services[service].Environment)
		if u, _ := url.Parse(env["DATABASE_URL"]); u == nil || u.Hostname() != "postgres" {
			t.Fatalf("%s: DATABASE_URL %q does not name the postgres service", service, env["DATABASE_URL"])
		}
		env["DATABASE_URL"] = dbURL
		if r, ok := env["REDIS_URL"]; ok {
			if u, _ := url.Parse(r); u == nil || u.Hostname() != "redis" {
				t.Fatalf("%s: REDIS_URL %q does not name the redis service", service, r)
			}
			env["REDIS_URL"] = redisURL
		}
		if a, ok := env["INCIDENTD_ADDR"]; ok {
			if a != "0.0.0.0:8080" {
				t.Fatalf("%s: INCIDENTD_ADDR %q, want 0.0.0.0:8080 (the load balancer's target)", service, a)
			}
			// A free port, and not on every interface of the test machine.
			env["INCIDENTD_ADDR"] = "127.0.0.1:0"
		}
		return env
	}
	argsOf := func(service string) []string {
		return append(slices.Clone(image.entrypoint[1:]), c.Services[service].Command...)
	}

	m := startContainerProcess(t, argsOf("migrate"), envOf("migrate"))
	if err := m.wait(t); err != nil {
		t.Fatalf("migrate: %v\n%s", err, m.stderr.String())
	}
	if !strings.Contains(m.stderr.String(), "migrations applied to pg") {
		t.Errorf("migrate said %q", m.stderr.String())
	}

	// The README's first key: `docker compose run --rm -T migrate apikey
	// create ...` runs these arguments in migrate's container (in a tenant
	// of its own: the test database is shared).
	tenant := fmt.Sprintf("compose%d", time.Now().UnixNano())
	k := startContainerProcess(t, append(slices.Clone(image.entrypoint[1:]),
		"apikey", "create", "--tenant", tenant, "--name", "admin", "--scopes", "apikeys:admin,incidents:write,components:write"),
		envOf("migrate"))
	if err := k.wait(t); err != nil {
		t.Fatalf("apikey create: %v\n%s", err, k.stderr.String())
	}
	key := strings.TrimSpace(k.stdout.String())
	if !regexp.MustCompile(`^ik_[a-z0-9]{12}_[A-Za-z0-9]{32}$`).MatchString(key) {
		t.Fatalf("apikey create printed %q, want only the key", k.stdout.String())
	}

	// Both start before either is waited for, as compose starts them.
	procs := make([]*containerProcess, len(replicas))
	for i, name := range replicas {
		procs[i] = startContainerProcess(t, argsOf(name), envOf(name))
	}
	for i, name := range replicas {
		p := procs[i]
		base := "http://" + p.listenAddr(t)
		for _, l := range p.stderr.lines() {
			if l["msg"] == "incidentd listening" && l["store"] != "pg" {
				t.Errorf("%s: store %v, want pg (PostgreSQL)", name, l["store"])
			}
		}
		waitFor(t, name+" /readyz to answer 200", func() bool {
			return httpStatus(t, base+"/readyz", "") == http.StatusOK
		})
		// One database behind both: the key created once works on each.
		if got := httpStatus(t, base+"/v1/incidents", key); got != http.StatusOK {
			t.Errorf("%s: GET /v1/incidents with the new key: %d", name, got)
		}
		// JSON logs, as compose asks (INCIDENTD_LOG_FORMAT=json).
		first, _, _ := strings.Cut(p.stderr.String(), "\n")
		if !json.Valid([]byte(first)) {
			t.Errorf("%s: first log line is not JSON: %q", name, first)
		}
	}
}

// dockerImage is what the Dockerfile's final stage gives a container.
type dockerImage struct {
	base       string
	user       string
	env        map[string]string
	entrypoint []string
	cmd        []string
	expose     []string
	volumes    []string
	copies     []string
	build      string // the build stage's instructions, joined
}

// dockerfileImage reads the Dockerfile: its instructions (continuations
// joined, comments dropped), split into stages at FROM.
func dockerfileImage(t *testing.T) dockerImage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var instrs []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var stages [][]string
	for _, in := range instrs {
		if strings.HasPrefix(strings.ToUpper(in), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(stages))
	}
	img := dockerImage{env: map[string]string{}, build: strings.Join(stages[len(stages)-2], "\n")}
	execForm := func(in, v string) []string {
		var l []string
		if err := json.Unmarshal([]byte(v), &l); err != nil || len(l) == 0 {
			// The shell form needs /bin/sh, which the final image lacks.
			t.Fatalf("Dockerfile %q: want the exec (JSON) form", in)
		}
		return l
	}
	for _, in := range stages[len(stages)-1] {
		op, v, _ := strings.Cut(in, " ")
		v = strings.TrimSpace(v)
		switch strings.ToUpper(op) {
		case "FROM":
			img.base = strings.Fields(v)[0]
		case "USER":
			img.user = v
		case "ENV":
			for _, kv := range strings.Fields(v) {
				k, val, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile ENV %q: want KEY=value pairs", v)
				}
				img.env[k] = val
			}
		case "ENTRYPOINT":
			img.entrypoint = execForm(in, v)
		case "CMD":
			img.cmd = execForm(in, v)
		case "EXPOSE":
			img.expose = append(img.expose, strings.Fields(v)...)
		case "VOLUME":
			img.volumes = append(img.volumes, execForm(in, v)...)
		case "COPY":
			img.copies = append(img.copies, v)
		}
	}
	return img
}

// maps merges ms in order, later values winning (image ENV, then compose's
// environment, as the runtime does).
func mergeEnv(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestDockerfile checks the image the Dockerfile describes: a static build,
// a non-root final stage on distroless or scratch exposing 8080, and an
// ENTRYPOINT+CMD that, with the image's ENV, start a server that answers
// /healthz and /readyz on the SQLite store in the /data volume, as
// `docker run incidentd` would.
func TestDockerfile(t *testing.T) {
	img := dockerfileImage(t)
	for _, s := range []string{"golang:1.26-bookworm AS build", "CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/incidentd"} {
		if !strings.Contains(img.build, s) {
			t.Errorf("Dockerfile build stage lacks %q", s)
		}
	}
	if img.base != "scratch" && !strings.HasPrefix(img.base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", img.base)
	}
	uid, _, _ := strings.Cut(img.user, ":")
	if !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
		t.Errorf("final stage USER %q, want a numeric non-root uid", img.user)
	}
	// /data must belong to that user, or SQLite cannot create its files.
	if !slices.ContainsFunc(img.copies, func(c string) bool {
		return strings.HasPrefix(c, "--from=build --chown="+img.user+" ") && strings.HasSuffix(c, " /data")
	}) {
		t.Errorf("no COPY --chown=%s ... /data in the final stage: %v", img.user, img.copies)
	}
	if !slices.Contains(img.volumes, "/data") || !slices.Contains(img.expose, "8080") {
		t.Errorf("VOLUME %v EXPOSE %v, want /data and 8080", img.volumes, img.expose)
	}
	if len(img.entrypoint) != 1 || img.entrypoint[0] != "/incidentd" {
		t.Fatalf("ENTRYPOINT %v, want [/incidentd] (CMD and compose's command give the subcommand)", img.entrypoint)
	}
	if !slices.Equal(img.cmd, []string{"serve"}) {
		t.Errorf("CMD %v, want [serve]", img.cmd)
	}
	if img.env["INCIDENTD_ADDR"] != "0.0.0.0:8080" {
		t.Errorf("ENV INCIDENTD_ADDR=%q, want 0.0.0.0:8080 (the default 127.0.0.1 is unreachable from outside the container)", img.env["INCIDENTD_ADDR"])
	}
	dbPath, ok := strings.CutPrefix(img.env["DATABASE_URL"], "sqlite:///data/")
	if !ok {
		t.Fatalf("ENV DATABASE_URL=%q, want sqlite:///data/... (the volume)", img.env["DATABASE_URL"])
	}

	// Run it: the volume becomes a temporary directory, the port a free one.
	env := mergeEnv(img.env)
	dir := t.TempDir()
	env["DATABASE_URL"] = "sqlite://" + filepath.Join(dir, dbPath)
	env["INCIDENTD_ADDR"] = "127.0.0.1:0"
	p := startContainerProcess(t, append(slices.Clone(img.entrypoint[1:]), img.cmd...), env)
	base := "http://" + p.listenAddr(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := httpStatus(t, base+path, ""); got != http.StatusOK {
			t.Errorf("GET %s: %d", path, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, dbPath)); err != nil {
		t.Errorf("the SQLite store is not in the volume: %v", err)
	}
	p.stop(t)
}
