// Package model is the domain of incidentd: types, validation, domain errors,
// service interfaces and the pure decision logic. It imports only the standard
// library so that every other package can depend on it.
package model

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. Each transport maps codes to its own wire
// form in exactly one place (rest: HTTP status + problem+json, graph: extensions.code).
type Code string

const (
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeRateLimited  Code = "rate_limited"
	CodeBusinessRule Code = "business_rule"
	CodeUnavailable  Code = "unavailable"
	CodeInternal     Code = "internal"
	// CodePreconditionFailed: the resource is no longer the version the
	// caller expected (If-Match, expectedVersion).
	CodePreconditionFailed Code = "precondition_failed"
	// CodePreconditionRequired: the tenant requires an expected version on
	// every change and none was given.
	CodePreconditionRequired Code = "precondition_required"
)

// WireName is the error's name on both doors: REST's `error` member (the
// incidents contract's names) and GraphQL's extensions.code.
func (c Code) WireName() string {
	switch c {
	case CodeInvalid:
		return "ValidationError"
	case CodeNotFound:
		return "NotFound"
	case CodeConflict:
		return "Conflict"
	case CodeUnauthorized:
		return "Unauthorized"
	case CodeForbidden:
		return "Forbidden"
	case CodeRateLimited:
		return "RateLimitExceeded"
	case CodeBusinessRule:
		return "BusinessRuleViolation"
	case CodeUnavailable:
		return "ServiceUnavailable"
	case CodePreconditionFailed:
		return "PreconditionFailed"
	case CodePreconditionRequired:
		return "PreconditionRequired"
	}
	return "InternalError"
}

// FieldError names one violated input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one error type of the domain.
type Error struct {
	Code    Code
	Message string
	Details []FieldError
	// Err is an underlying cause; it is logged, never shown to clients.
	Err error
	// Version is the resource's current version (precondition_failed).
	Version string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports bad input; details list every violated field.
func Invalid(message string, details ...FieldError) *Error {
	return &Error{Code: CodeInvalid, Message: message, Details: details}
}

// NotFound reports a resource that does not exist in the caller's tenant.
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s with id '%s' not found", kind, id)}
}

// Conflict reports a clash with the current state of a resource.
func Conflict(message string) *Error { return &Error{Code: CodeConflict, Message: message} }

// BusinessRule reports input that is well-formed but breaks a domain rule.
func BusinessRule(message string, details ...FieldError) *Error {
	return &Error{Code: CodeBusinessRule, Message: message, Details: details}
}

// Unauthorized reports a missing or unacceptable credential.
func Unauthorized(message string) *Error { return &Error{Code: CodeUnauthorized, Message: message} }

// Forbidden reports a principal that lacks a scope.
func Forbidden(message string) *Error { return &Error{Code: CodeForbidden, Message: message} }

// Internal wraps an unexpected failure; its cause is never shown to clients.
// A cause that is a dependency being away (see Unavailable) is reported as
// unavailable instead, so that clients retry rather than give up.
func Internal(err error, context string) *Error {
	if Unavailable(err) {
		return unavailable(fmt.Errorf("%s: %w", context, err))
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", context, err)}
}

// AsError returns err as a domain error; anything that is not one becomes internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Code == CodeInternal && Unavailable(e.Err) {
			return unavailable(e.Err)
		}
		return e
	}
	if Unavailable(err) {
		return unavailable(err)
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// ErrorCode returns the code of err, CodeInternal for foreign errors.
func ErrorCode(err error) Code { return AsError(err).Code }
