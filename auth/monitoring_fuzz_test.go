package auth

import "testing"

// FuzzVerifyHS256: any input is refused or verified, never a panic, and
// nothing but a correct HS256 signature passes.
func FuzzVerifyHS256(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzIjoxfQ.sig")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, ok := verifyHS256(tok, []byte("dev")); ok {
			t.Fatalf("forged token accepted: %q", tok)
		}
	})
}
