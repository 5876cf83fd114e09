package model

import (
	"crypto/rand"
	"time"
)

// Clock tells the time; tests inject a fixed or stepping one.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns prefix + "_" + n random lowercase alphanumerics, the seed's id
// shape (inc_1a2b3c4d5e6f).
func NewID(prefix string, n int) string {
	return prefix + "_" + RandomString(n, idAlphabet)
}

// RandomString draws n characters of alphabet from crypto/rand without modulo bias.
func RandomString(n int, alphabet string) string {
	out := make([]byte, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet)
	for i := 0; i < n; {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out[i] = alphabet[int(b)%len(alphabet)]
			i++
			if i == n {
				break
			}
		}
	}
	return string(out)
}
