package rest

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

var listParams = []string{"status", "severity", "service", "keyword", "fromOccurredAt", "toOccurredAt", "limit", "offset", "sort", "cursor"}

// parseIncidentQuery reads the incidents contract's list parameters plus cursor. Unknown
// parameters and bad values are 400s listing every problem; an empty value
// counts as absent.
func parseIncidentQuery(values url.Values) (model.IncidentQuery, error) {
	q := model.IncidentQuery{Sort: model.DefaultSort, Limit: model.DefaultLimit}
	var errs []model.FieldError
	fail := func(field, msg string) { errs = append(errs, model.FieldError{Field: field, Message: msg}) }
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		vs := values[name]
		if !slices.Contains(listParams, name) {
			fail(name, "unknown query parameter "+name)
			continue
		}
		multi := name == "status" || name == "severity"
		if len(vs) > 1 && !multi {
			fail(name, name+" must be given once")
			continue
		}
		v := strings.Join(vs, ",")
		if v == "" {
			continue
		}
		switch name {
		case "status":
			for s := range strings.SplitSeq(v, ",") {
				q.Filter.Statuses = append(q.Filter.Statuses, model.Status(strings.TrimSpace(s)))
			}
		case "severity":
			for s := range strings.SplitSeq(v, ",") {
				q.Filter.Severities = append(q.Filter.Severities, model.Severity(strings.TrimSpace(s)))
			}
		case "service":
			q.Filter.Service = &v
		case "keyword":
			q.Filter.Keyword = v
		case "fromOccurredAt", "toOccurredAt":
			t, ok := parseQueryTime(v)
			if !ok {
				fail(name, name+" must be an RFC 3339 date-time, e.g. 2024-01-15T14:30:00Z")
			} else if name == "fromOccurredAt" {
				q.Filter.From = &t
			} else {
				q.Filter.To = &t
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > model.MaxLimit {
				fail("limit", "limit must be between 1 and 100")
			}
			q.Limit = n
		case "offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > model.MaxOffset {
				fail("offset", "offset must be between 0 and 1000000")
			}
			q.Offset = n
		case "sort":
			s, err := model.ParseSort(v)
			if err != nil {
				errs = append(errs, model.AsError(err).Details...)
			}
			q.Sort = s
		case "cursor":
			c, err := model.DecodeCursor(v)
			if err != nil {
				errs = append(errs, model.AsError(err).Details...)
			}
			q.After = c
		}
	}
	if len(errs) > 0 {
		return q, model.Invalid("Invalid query parameters", errs...)
	}
	return q, q.Validate()
}

// parseQueryTime accepts RFC 3339, also when an unencoded '+' of the offset
// arrived as a space.
func parseQueryTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && strings.Contains(v, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	}
	return t, err == nil
}
