package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/incidentd/incidentd/model"
)

// timeLayout is fixed-width so that SQLite's text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// dbTime stores a time the same way in both dialects: UTC, microseconds.
type dbTime struct{ time.Time }

func newDBTime(t time.Time) dbTime { return dbTime{t.UTC().Truncate(time.Microsecond)} }

func newDBTimePtr(t *time.Time) *dbTime {
	if t == nil {
		return nil
	}
	v := newDBTime(*t)
	return &v
}

// Value refuses a time outside model.TimeInRange: the model refuses such
// input first, so one here is a bug, and writing it would break every later
// read of the row (SQLite's text would not parse back; PostgreSQL's would not
// be RFC 3339 on output).
func (t dbTime) Value() (driver.Value, error) {
	if !model.TimeInRange(t.Time) {
		return nil, fmt.Errorf("dbTime: %s is outside the years 0001..9999 every store holds", t.UTC().Format(time.RFC3339Nano))
	}
	return t.UTC().Format(timeLayout), nil
}

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("dbTime: cannot scan %T", src)
}

func (t *dbTime) parse(s string) error {
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("dbTime: %w", err)
	}
	t.Time = p.UTC()
	return nil
}

func (t *dbTime) ptr() *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// stringList is a JSON array of strings (jsonb on PostgreSQL, TEXT on SQLite).
type stringList []string

func (l stringList) Value() (driver.Value, error) {
	if l == nil {
		l = stringList{}
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

func (l *stringList) Scan(src any) error {
	var out []string
	if err := scanJSON("stringList", src, &out); err != nil {
		return err
	}
	if out == nil {
		out = []string{}
	}
	*l = out
	return nil
}

// scanJSON decodes a JSON column, whichever form the driver hands it in;
// NULL leaves dst as it is.
func scanJSON(what string, src, dst any) error {
	var raw []byte
	switch v := src.(type) {
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	case nil:
		return nil
	default:
		return fmt.Errorf("%s: cannot scan %T", what, src)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
