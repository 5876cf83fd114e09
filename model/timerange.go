package model

import "time"

// The one range of times the platform accepts: years 0001 to 9999 in UTC, at
// the stores' microsecond precision. Both stores hold it (PostgreSQL has no
// year 0; SQLite keeps fixed-width text whose order is time order only with
// four-digit years), and every time in it is written as valid RFC 3339 in
// UTC. RFC 3339 input may carry any offset up to ±23:59, so a time whose
// local year is in range can still leave it once normalised
// (9999-12-31T23:59:59-23:59 is year 10000 in UTC): the rule is applied to
// the normalised time, which is what the stores keep.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// TimeInRange reports whether t, normalised as the stores keep it, lies in
// the range every store can hold. Every time input of both doors passes
// through it (by the model's Validate methods and DecodeCursor), and the
// stores refuse to write anything outside it.
func TimeInRange(t time.Time) bool {
	n := NormalizeTime(t)
	return !n.Before(minTime) && !n.After(maxTime)
}

// checkTime is TimeInRange as the field rule of every Validate method.
func checkTime(field string, t time.Time) []FieldError {
	if !TimeInRange(t) {
		return []FieldError{{field, field + " must be between years 0001 and 9999"}}
	}
	return nil
}
