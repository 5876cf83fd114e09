package model

import "testing"

// Rule: names match case-insensitively; a string that is not valid UTF-8
// keys nothing a valid name keys (it used to fold to U+FFFD).
func TestNameKey(t *testing.T) {
	if NameKey("Degraded ÉTAT") != NameKey("degraded état") {
		t.Error("names differing in case key differently")
	}
	for _, bad := range []string{"a\xffb", "\xc3", "A\xff"} {
		if k := NameKey(bad); k == NameKey("a\uFFFDb") || k != bad {
			t.Errorf("NameKey(%q) = %q", bad, k)
		}
	}
}
