package apitest

// BadTimes are times both doors parse as RFC 3339 but no store holds:
// years 0000 and 10000 once the offset (up to ±23:59) is applied.
var BadTimes = []string{
	"9999-12-31T23:59:59-23:59",
	"9999-12-31T23:59:59.999999999-00:01",
	"0000-01-01T00:00:00Z",
	"0001-01-01T00:00:00+00:01",
}

// The extremes inside the range, as sent and as read back (UTC, microseconds).
const (
	FirstTime = "0001-01-01T00:00:00.000001Z"
	LastTime  = "9999-12-31T23:59:59.999999Z"
	// LastTimeZoned is LastTime written at -23:59: the offset is applied,
	// the time stays in range.
	LastTimeZoned = "9999-12-31T00:00:59.999999-23:59"
)
