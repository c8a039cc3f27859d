package podjson

import (
	"encoding/binary"
	"math/bits"
)

// WithoutManagedFields returns an object's JSON without metadata.managedFields, found by a
// byte scan rather than a decoder's skip. In admission requests managedFields describe every
// field of the pod, often half of its JSON, and injection never reads them; skipping them with
// a JSON decoder costs as much as decoding the rest of the pod.
//
// raw must be valid JSON, as an admission request's object is once controller-runtime decoded
// the AdmissionReview around it; raw itself is never modified. When the member is not where
// the API server writes it (a member "managedFields" of the top-level "metadata", names
// without escapes), raw is returned as is: decoding it whole is slower, never wrong.
func WithoutManagedFields(raw []byte) []byte {
	s := jsonScan{b: raw}
	var start, end int
	found := false
	s.members(func(key []byte) bool {
		if string(key) != "metadata" {
			s.skipValue()
			return true
		}
		if s.peek() != '{' {
			return false
		}
		prev := -1 // where the comma before the current member is, or -1 for the first
		s.members(func(key []byte) bool {
			if string(key) != "managedFields" {
				s.skipValue()
				prev = s.commaAfterValue()
				return true
			}
			// keyStart is where this member's name begins: the member runs from there
			// (or from the comma before it) to the end of its value (or the comma after it).
			start = s.keyStart
			s.skipValue()
			end = s.i
			if next := s.commaAfterValue(); next >= 0 {
				end = next + 1
			} else if prev >= 0 {
				start = prev
			}
			found = true
			return false
		})
		return false
	})
	if !found || s.err {
		return raw
	}
	out := make([]byte, 0, len(raw)-(end-start))
	return append(append(out, raw[:start]...), raw[end:]...)
}

// jsonScan walks valid JSON by bytes, without decoding it.
type jsonScan struct {
	b        []byte
	i        int
	keyStart int  // where the name of the member being visited begins
	err      bool // the input was not what a valid JSON document is
}

func (s *jsonScan) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScan) peek() byte {
	s.skipSpace()
	if s.i >= len(s.b) {
		s.err = true
		return 0
	}
	return s.b[s.i]
}

// members visits the members of the object at s.i, calling visit with s.i at each value;
// visit either consumes the value and returns true, or stops the walk.
func (s *jsonScan) members(visit func(key []byte) bool) {
	if s.peek() != '{' {
		s.err = true
		return
	}
	s.i++
	for !s.err {
		switch s.peek() {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		case '"':
		default:
			s.err = true
			return
		}
		s.keyStart = s.i
		key, plain := s.str()
		if s.peek() != ':' {
			s.err = true
			return
		}
		s.i++
		s.skipSpace()
		if !plain {
			key = nil // an escaped name is never one we look for
		}
		if !visit(key) {
			return
		}
	}
}

// fields visits the members of the object at s.i: visit consumes the values it wants and
// returns true; the others are skipped. A value that is not an object is skipped.
func (s *jsonScan) fields(visit func(key []byte) bool) {
	if s.peek() != '{' {
		s.skipValue()
		return
	}
	s.members(func(key []byte) bool {
		if !visit(key) {
			s.skipValue()
		}
		return !s.err
	})
}

// elements visits the elements of the array at s.i, calling visit with s.i at each; visit
// consumes the element. A value that is not an array is skipped.
func (s *jsonScan) elements(visit func()) {
	if s.peek() != '[' {
		s.skipValue()
		return
	}
	s.i++
	for !s.err {
		switch s.peek() {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		if s.err {
			return
		}
		at := s.i
		visit()
		if s.i == at {
			s.err = true // not a value: only invalid JSON gets here
		}
	}
}

// commaAfterValue returns the index of the comma that follows the value just skipped, or -1
// when the object ends there.
func (s *jsonScan) commaAfterValue() int {
	if s.peek() == ',' {
		return s.i
	}
	return -1
}

// str consumes a string and returns its contents as written, and whether it has no escapes.
func (s *jsonScan) str() ([]byte, bool) {
	start, plain := s.i+1, true // past the opening quote
	end, ok := stringEnd(s.b, start, &plain)
	if !ok {
		s.i, s.err = len(s.b), true
		return nil, false
	}
	s.i = end + 1
	return s.b[start:end], plain
}

// stringEnd returns the index of the quote that ends the string whose contents start at i,
// clearing *plain when it has an escape. Most of a pod's JSON is in strings, so it looks at
// eight bytes at a time for a quote or a backslash.
func stringEnd(b []byte, i int, plain *bool) (int, bool) {
	for {
		for i+8 <= len(b) {
			if m := quoteOrBackslash(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case '"':
			return i, true
		case '\\':
			*plain = false
			i += 2
		default: // one of the last seven bytes
			i++
		}
	}
}

// quoteOrBackslash has the high bit set in the first byte of x (little-endian) that is a quote
// or a backslash, and in none before it: the classic test for a zero byte, whose lowest match
// is exact, on x with the byte sought XORed away.
func quoteOrBackslash(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((q - ones) &^ q & highs) | ((bs - ones) &^ bs & highs)
}

// skipValue consumes one value: a string, or an object or array with everything in it, or a
// number or literal.
func (s *jsonScan) skipValue() {
	switch s.peek() {
	case '"':
		s.str()
		return
	case '{', '[':
		b, i, depth, plain := s.b, s.i, 0, true
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := stringEnd(b, i+1, &plain)
				if !ok {
					s.i, s.err = len(b), true
					return
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i = i + 1
					return
				}
			}
			i++
		}
		s.i, s.err = i, true
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}
