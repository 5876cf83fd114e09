package rest

import (
	"net/http"
	"strings"

	"github.com/incidentd/incidentd/model"
)

// Conditional requests (RFC 9110 §13) on every single resource (incidents,
// components, API keys, impact types, severities, phase lists, webhook
// endpoints, settings), one rule for all: the ETag is the resource's model
// version in quotes, on GET and on the answers of writes; GET answers 304
// to an If-None-Match naming it; PATCH, PUT and DELETE (and the POSTs that
// change one: rotations, phases) with If-Match apply only to a version it
// names (412 with the current ETag otherwise), checked by the store under
// the row's lock.

// NoneMatch reports whether an If-None-Match header names etag, by the
// weak comparison RFC 9110 prescribes for it (any listed tag, or *): the
// one rule of every conditional GET, the web pages' too.
func NoneMatch(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// setETag names the representation about to be written.
func setETag(w http.ResponseWriter, version string) {
	w.Header().Set("ETag", `"`+version+`"`)
}

// writeVersioned writes a single resource's representation with its ETag.
func writeVersioned(w http.ResponseWriter, status int, version string, v any) {
	setETag(w, version)
	writeJSON(w, status, v)
}

// getVersioned answers a GET of a single resource: 304 when If-None-Match
// names its version, else the representation with its ETag.
func getVersioned(w http.ResponseWriter, r *http.Request, version string, v any) {
	if !notModified(w, r, version) {
		writeVersioned(w, http.StatusOK, version, v)
	}
}

// notModified answers 304 when If-None-Match names version.
func notModified(w http.ResponseWriter, r *http.Request, version string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" || !NoneMatch(inm, `"`+version+`"`) {
		return false
	}
	setETag(w, version)
	w.WriteHeader(http.StatusNotModified)
	return true
}

// withIfMatch puts If-Match's versions into the request's context for the
// store (model.WithExpectedVersion). A weak tag never matches (RFC 9110:
// If-Match compares strongly), and a malformed one is a 400.
func withIfMatch(r *http.Request) (*http.Request, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return r, nil
	}
	if h == "*" {
		return r.WithContext(model.WithExpectedVersion(r.Context(), "*")), nil
	}
	var versions []string
	for tag := range strings.SplitSeq(h, ",") {
		tag = strings.TrimSpace(tag)
		if strings.HasPrefix(tag, "W/") {
			versions = append(versions, "weak:never-matches")
			continue
		}
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || strings.ContainsAny(tag[1:len(tag)-1], `", `) {
			return r, model.Invalid("Invalid If-Match", model.FieldError{Field: "If-Match",
				Message: `If-Match is * or a list of entity tags in double quotes, e.g. "3kT0aF1yq2yq8pZcX1"`})
		}
		versions = append(versions, tag[1:len(tag)-1])
	}
	return r.WithContext(model.WithExpectedVersion(r.Context(), strings.Join(versions, ","))), nil
}
