package migrations

import (
	"io/fs"
	"path"
	"slices"
	"testing"
)

// TestDialectsMatch: every migration exists for both dialects, so that a
// schema change cannot reach one store only.
func TestDialectsMatch(t *testing.T) {
	names := func(dir string) []string {
		files, err := fs.Glob(files, dir+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = path.Base(f)
		}
		return files
	}
	pg, lite := names("postgres"), names("sqlite")
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Errorf("postgres %v, sqlite %v", pg, lite)
	}
}
