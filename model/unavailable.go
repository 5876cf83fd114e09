package model

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// ErrUnavailable marks a failure of a dependency that is away for now (the
// database restarting, a connection cut): the request may succeed if
// retried. Stores wrap such errors with it where they know better than
// the generic rules of Unavailable.
var ErrUnavailable = errors.New("dependency unavailable")

// Unavailable reports whether err says a dependency is away rather than
// that the request or the code is wrong: ErrUnavailable, a refused, reset
// or cut connection, a network timeout, or a SQLSTATE of class 08
// (connection exception), 57P01-57P03 (the server shutting down or starting)
// or 53300 (too many connections). It looks at the error chain only, so
// that model needs no driver.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		c := state.SQLState()
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300"
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func unavailable(cause error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the database is unavailable; retry shortly", Err: cause}
}
