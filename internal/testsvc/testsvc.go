// Package testsvc starts throwaway instances of the services the server
// depends on (a redis-server, a PostgreSQL cluster) for tests that stop and
// restart them, so that such tests never disturb the shared instances other
// tests use. Only the standard library: any package's tests may import it.
package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort asks the kernel for a port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitDial waits until something accepts TCP connections on addr.
func waitDial(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Redis is a redis-server of the test's own.
type Redis struct {
	t    testing.TB
	Port int
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server on a free port, stopped at the end of
// the test; the test is skipped when redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: the Redis fault tests are skipped (CI installs it)")
	}
	r := &Redis{t: t, Port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the instance's redis:// address.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start (re)starts the server on its port and waits until it accepts connections.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitDial(ctx, fmt.Sprintf("127.0.0.1:%d", r.Port)); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		r.t.Fatalf("%v\n%s", err, out.String())
	}
	r.cmd = cmd
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Postgres is a PostgreSQL cluster of the test's own (initdb + pg_ctl), run
// as the postgres user when the test runs as root (PostgreSQL refuses root).
type Postgres struct {
	t              testing.TB
	Port           int
	dir, bin, user string
	settings       []string
}

// StartPostgres makes and starts a cluster on a free port, stopped and
// removed at the end of the test. It is skipped when PostgreSQL's server
// programs are not installed.
//
// settings are extra server settings ("name=value") for every start.
func StartPostgres(t testing.TB, settings ...string) *Postgres {
	t.Helper()
	bin := pgBin()
	if bin == "" {
		t.Skip("PostgreSQL's initdb and pg_ctl are not installed: the database fault tests are skipped (CI has them)")
	}
	p := &Postgres{t: t, Port: freePort(t), bin: bin, settings: settings}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		p.user = "postgres"
		if _, err := user.Lookup(p.user); err != nil {
			t.Skip("running as root without a postgres user: the database fault tests are skipped")
		}
	}
	dir, err := os.MkdirTemp("", "incidentd-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	if p.user != "" {
		p.chown()
	}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start()
	return p
}

// pgBin finds the newest installed PostgreSQL's server programs.
func pgBin() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a < b
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) chown() {
	u, err := user.Lookup(p.user)
	if err != nil {
		p.t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(p.dir, uid, gid); err != nil {
		p.t.Fatal(err)
	}
}

// run runs one of PostgreSQL's programs, as the postgres user if needed.
func (p *Postgres) run(prog string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	if p.user != "" {
		u, err := user.Lookup(p.user)
		if err != nil {
			return "", err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+p.dir)
	}
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// URL is a connection string for the cluster's postgres database.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// Start starts the cluster and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	args := []string{"-p", strconv.Itoa(p.Port), "-k", p.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=100", "-c", "shared_buffers=32MB"}
	for _, s := range p.settings {
		args = append(args, "-c", s)
	}
	opts := strings.Join(args, " ")
	if out, err := p.run("pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the cluster: mode "fast" disconnects every client and shuts
// down cleanly, "immediate" is a crash (recovery replays the WAL at start).
func (p *Postgres) Stop(mode string) {
	p.t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
