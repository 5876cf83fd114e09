package main

import (
	"strings"
	"testing"
	"time"
)

// scanSeeds are messages of the shapes a server may send, plus near misses.
var scanSeeds = []string{
	`{"id":"1","type":"next","payload":{"data":{"incidentChanged":{"id":"42","type":"CREATED","at":"2026-03-01T10:00:00.001000Z","incident":{"id":"inc_abc"}}}}}`,
	`{"payload":{"data":{"incidentChanged":{"id":"7","type":"UPDATED","at":"2026-03-01T10:00:00Z","incident":{"id":"inc_x","tags":["a","b\"c"],"n":-1.5e3,"ok":true,"z":null}}}},"type":"next","id":"1"}`,
	" {\n \"type\" : \"next\" , \"payload\" : { \"data\" : { \"incidentChanged\" : { \"at\" : \"2026-03-01T10:00:00Z\" , \"incident\" : { \"id\" : \"inc_a\" } } } , \"errors\" : null } } \n",
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"}}},"errors":[]}}`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"}}},"errors":[{"message":"partial"}]}}`,
	`{"type":"next","payload":{"data":null,"errors":[{"message":"boom"}]}}`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_\u0061"}}}}}`,
	`{"Type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"}}}}}`,
	`{"type":"next","type":"ping","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"}}}}}`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a","ID":"inc_b"}}}}}`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"}}}}}x`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"},"x":01}}}}`,
	`{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{"id":"inc_a"},"x":tru}}}}`,
	`{"type":"ping"}`,
	`{"id":"1","type":"error","payload":[{"message":"x"}]}`,
	`{"type":"connection_ack"}`,
}

func TestScanNext(t *testing.T) {
	at, id, ok := scanNext([]byte(scanSeeds[0]))
	if !ok || string(at) != "2026-03-01T10:00:00.001000Z" || string(id) != "inc_abc" {
		t.Errorf("scanNext = %q, %q, %v", at, id, ok)
	}
	// The fast path takes the ordinary shapes and leaves the rest.
	for i, want := range []bool{true, true, true, false, false, false, false, false, false, false, false, false, false, false, false, false} {
		if _, _, ok := scanNext([]byte(scanSeeds[i])); ok != want {
			t.Errorf("seed %d: fast path %v, want %v: %s", i, ok, want, scanSeeds[i])
		}
	}
}

// FuzzScanNext checks that whatever the fast path accepts, encoding/json
// reads the same way.
func FuzzScanNext(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	recv := time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		at, id, ok := scanNext(b)
		if !ok {
			return
		}
		typ, ev, err := decodeMessage(b, recv)
		want, werr := newEvent(string(at), idHash(id), recv)
		if typ != "next" || (err == nil) != (werr == nil) || ev != want {
			t.Errorf("fast path read %q/%q from %q; encoding/json: %q %+v %v", at, id, b, typ, ev, err)
		}
	})
}

// TestParseMessageAgrees runs every seed through both paths.
func TestParseMessageAgrees(t *testing.T) {
	recv := time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)
	for _, s := range append(scanSeeds, strings.Replace(scanSeeds[0], "2026-03-01T10", "yesterday", 1)) {
		t1, e1, err1 := parseMessage([]byte(s), recv)
		t2, e2, err2 := decodeMessage([]byte(s), recv)
		if t1 != t2 || e1 != e2 || (err1 == nil) != (err2 == nil) {
			t.Errorf("%s:\nparseMessage  %q %+v %v\ndecodeMessage %q %+v %v", s, t1, e1, err1, t2, e2, err2)
		}
	}
}
