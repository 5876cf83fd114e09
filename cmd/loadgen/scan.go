package main

// A fast path for the one message -fanout receives by the hundred thousand
// per second: a `next` of incidentChanged. encoding/json spends a few
// microseconds and a dozen allocations on it, which on a small host competes
// with the server being measured; this walker reads it in a fraction of
// that. It is strict: every value is either read or skipped according to the
// JSON grammar, and anything it does not handle (escapes in the strings it
// reads, errors, nulls where objects are expected, other message types)
// makes it give up, so parseMessage falls back to encoding/json.

// scanNext returns the event's "at" and incident id from a well-formed
// `next` message, or ok=false. It gives up on keys that match a field only
// case-insensitively, which encoding/json would honour.
func scanNext(b []byte) (at, incidentID []byte, ok bool) {
	s := scanner{b: b}
	var typ []byte
	ok = s.object(func(k []byte) bool {
		switch string(k) {
		case "type":
			typ, ok = s.str()
			return ok
		case "payload":
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "data":
					return s.object(func(k []byte) bool {
						if string(k) != "incidentChanged" {
							return !foldOnly(k, "incidentChanged") && s.skip(0)
						}
						return s.object(func(k []byte) bool {
							switch string(k) {
							case "at":
								at, ok = s.str()
								return ok
							case "incident":
								return s.object(func(k []byte) bool {
									if string(k) != "id" {
										return !foldOnly(k, "id") && s.skip(0)
									}
									incidentID, ok = s.str()
									return ok
								})
							}
							return !foldOnly(k, "at") && !foldOnly(k, "incident") && s.skip(0)
						})
					})
				case "errors":
					return s.null() // errors: leave them to the full decoder
				}
				return !foldOnly(k, "data") && !foldOnly(k, "errors") && s.skip(0)
			})
		}
		return !foldOnly(k, "type") && !foldOnly(k, "payload") && s.skip(0)
	})
	s.ws()
	if !ok || s.i != len(b) || string(typ) != "next" || len(at) == 0 || len(incidentID) == 0 {
		return nil, nil, false
	}
	return at, incidentID, true
}

// foldOnly reports whether key matches name case-insensitively but not
// exactly. Keys reaching it are ASCII (str gives up on anything else).
func foldOnly(key []byte, name string) bool {
	if len(key) != len(name) || string(key) == name {
		return false
	}
	for i := range len(key) { // every name is letters only
		c := key[i] | 0x20
		if c < 'a' || c > 'z' || c != name[i]|0x20 {
			return false
		}
	}
	return true
}

const maxScanDepth = 64

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after whitespace, if it comes next.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads {"key": value, ...}, calling field with each key to read or
// skip the value that follows.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.next(':') || !field(k) {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}

// str reads a string of plain ASCII; escapes and other bytes make the
// walker give up rather than decode them (encoding/json would turn invalid
// UTF-8 into U+FFFD).
func (s *scanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// array reads [value, ...], calling elem to read or skip each value.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next(']')
	}
}

// null reads the literal null.
func (s *scanner) null() bool {
	return s.peek() == 'n' && s.lit("null")
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip steps over any JSON value, checking its grammar.
func (s *scanner) skip(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch s.peek() {
	case '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case '"':
		return s.skipStr()
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.number()
}

// skipStr steps over a string, escapes included.
func (s *scanner) skipStr() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return false
					}
					s.i++
				}
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number steps over -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.next('-')
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case !s.digits():
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
