package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg: " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

// Rule: a dependency being away is "unavailable" (503, retry), anything
// else that is unexpected stays "internal"; Internal and AsError agree.
func TestUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	away := []error{
		ErrUnavailable,
		fmt.Errorf("acquire: %w", refused),
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
		syscall.ECONNRESET,
		fmt.Errorf("write: %w", syscall.EPIPE),
		fmt.Errorf("query: %w", sqlStateErr("08006")),
		sqlStateErr("57P01"), sqlStateErr("57P02"), sqlStateErr("57P03"), sqlStateErr("53300"),
	}
	for _, err := range away {
		if !Unavailable(err) {
			t.Errorf("Unavailable(%v) = false", err)
		}
		if e := Internal(err, "load"); e.Code != CodeUnavailable || !errors.Is(e, err) || e.Message != "the database is unavailable; retry shortly" {
			t.Errorf("Internal(%v) = %+v", err, e)
		}
		if e := AsError(err); e.Code != CodeUnavailable {
			t.Errorf("AsError(%v) = %+v", err, e)
		}
		if e := AsError(&Error{Code: CodeInternal, Message: "internal error", Err: err}); e.Code != CodeUnavailable {
			t.Errorf("AsError(internal wrapping %v) = %+v", err, e)
		}
	}
	wrong := []error{
		errors.New("syntax error"),
		sqlStateErr("23505"), sqlStateErr("42601"), sqlStateErr("57014"), // unique, syntax, cancelled statement
		context.Canceled, io.EOF,
	}
	for _, err := range wrong {
		if Unavailable(err) {
			t.Errorf("Unavailable(%v) = true", err)
		}
		if e := Internal(err, "load"); e.Code != CodeInternal {
			t.Errorf("Internal(%v) = %+v", err, e)
		}
	}
	if Unavailable(nil) {
		t.Error("Unavailable(nil)")
	}
	// A domain error keeps its code whatever it wraps.
	nf := &Error{Code: CodeNotFound, Message: "x", Err: ErrUnavailable}
	if AsError(nf) != nf {
		t.Error("AsError changed a not-found error")
	}
}
