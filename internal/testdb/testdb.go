// Package testdb gives each test process a PostgreSQL database of its own,
// made in the cluster TEST_DATABASE_URL names. `go test ./...` runs
// packages as parallel processes, and the webhook engine and fan-out of
// one package's servers work across tenants: on one shared database they
// would send another package's deliveries, rendered their own way.
package testdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the cluster's URL.
const Env = "TEST_DATABASE_URL"

var (
	once   sync.Once
	ownURL string
	ownErr error
)

// URL returns this process's database, made on first use ("" when Env is
// not set). Databases of processes that have ended are dropped then.
func URL() (string, error) {
	once.Do(func() { ownURL, ownErr = create(os.Getenv(Env)) })
	return ownURL, ownErr
}

func create(base string) (string, error) {
	if base == "" {
		return "", nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("testdb: %s: %w", Env, err)
	}
	prefix := strings.TrimPrefix(u.Path, "/") + "_t"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("testdb: connect: %w", err)
	}
	defer conn.Close(ctx)
	dropEnded(ctx, conn, prefix)
	name := prefix + strconv.Itoa(os.Getpid())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("testdb: drop %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("testdb: create %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropEnded drops the databases of test processes that no longer run
// (best effort: another run may be dropping them too).
func dropEnded(ctx context.Context, conn *pgx.Conn, prefix string) {
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, prefix)
	if err != nil {
		return
	}
	var ended []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if err == nil && !running(pid) {
			ended = append(ended, name)
		}
	}
	rows.Close()
	for _, name := range ended {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

// running reports whether a process of that id exists.
func running(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || err == syscall.EPERM
}

// For is URL for a test: "" when Env is not set; a failure to make the
// database fails the test.
func For(t testing.TB) string {
	t.Helper()
	u, err := URL()
	if err != nil {
		t.Fatal(err)
	}
	return u
}
