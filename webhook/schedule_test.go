package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Rule: a schedule is positive durations, at most MaxWebhookRetries of
// them (an attempt log is bounded by it); empty is the default.
func TestParseSchedule(t *testing.T) {
	got, err := ParseSchedule(" 5s, 5m ,2h")
	if err != nil || len(got) != 3 || got[0] != 5*time.Second || got[2] != 2*time.Hour {
		t.Errorf("parsed %v %v", got, err)
	}
	if got, err := ParseSchedule(" "); err != nil || got != nil {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"5s,,5m", "-1s", "0s", "soon", strings.Repeat("1s,", model.MaxWebhookRetries) + "1s"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseSchedule(strings.TrimSuffix(strings.Repeat("1s,", model.MaxWebhookRetries), ",")); err != nil {
		t.Errorf("%d retries refused: %v", model.MaxWebhookRetries, err)
	}
}
