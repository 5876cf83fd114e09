package webhook

import (
	"fmt"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

// ParseSchedule reads a retry schedule: comma-separated durations, each
// the wait before the next attempt ("5s,5m,30m,2h,5h,10h,10h"); "" is the
// default one.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []time.Duration
	for item := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(item))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("retry schedule %q: %q is not a positive duration", s, item)
		}
		out = append(out, d)
	}
	if len(out) > model.MaxWebhookRetries {
		return nil, fmt.Errorf("retry schedule %q: at most %d retries", s, model.MaxWebhookRetries)
	}
	return out, nil
}
