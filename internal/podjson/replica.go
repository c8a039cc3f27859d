package podjson

import "crypto/sha256"

// masked stands for a value the replica key leaves out: NUL never occurs in JSON text outside
// an escape, so a key cannot be mistaken for another with a value there.
const masked = 0

// Mask names the values of a pod's JSON that its replica key leaves out: those that differ
// between the replicas of one pod template. Names are matched as written: a member whose name
// has an escape is kept, which only makes the key more particular.
type Mask struct {
	// Metadata are members of the top-level metadata, masked whole.
	Metadata []string
	// Names are members of spec holding arrays of objects whose "name" is masked.
	Names []string
	// NestedNames are members of spec holding arrays of objects whose member named by the
	// value holds arrays of objects whose "name" is masked (containers' volumeMounts).
	NestedNames map[string]string
	// Keep is a name that is never masked.
	Keep string
}

// replicaSpans finds the values of a pod's JSON that mask leaves out, in order, and reports
// whether it could: raw must be the valid JSON of a pod, as in an admission request.
func replicaSpans(raw []byte, mask Mask) ([][2]int, bool) {
	s := jsonScan{b: raw}
	var spans [][2]int // the values to mask, in order
	maskValue := func() {
		start := s.i
		s.skipValue()
		spans = append(spans, [2]int{start, s.i})
	}
	// maskNames masks the member "name" of each object of the array at s.i, unless it is
	// mask.Keep; with in, those of the array in each object's member in.
	var maskNames func(in string)
	maskNames = func(in string) {
		s.elements(func() {
			s.fields(func(key []byte) bool {
				switch {
				case in == "" && string(key) == "name" && s.peek() == '"':
					start := s.i
					if name, plain := s.str(); plain && string(name) != mask.Keep {
						spans = append(spans, [2]int{start, s.i})
					}
				case in != "" && string(key) == in:
					maskNames("")
				default:
					return false
				}
				return true
			})
		})
	}
	if s.peek() != '{' {
		return nil, false
	}
	s.fields(func(key []byte) bool {
		switch string(key) {
		case "metadata":
			s.fields(func(key []byte) bool {
				if !containsKey(mask.Metadata, key) {
					return false
				}
				maskValue()
				return true
			})
		case "spec":
			s.fields(func(key []byte) bool {
				if containsKey(mask.Names, key) {
					maskNames("")
					return true
				}
				if in, ok := mask.NestedNames[string(key)]; ok {
					maskNames(in)
					return true
				}
				return false
			})
		default:
			return false
		}
		return true
	})
	if s.err {
		return nil, false
	}
	return spans, true
}

// ReplicaKey appends to dst the namespace and the pod's JSON with the values mask names
// replaced by a NUL byte, and reports whether it could. The answer memo keeps its hash,
// ReplicaHash; the key itself is the definition tests read.
func ReplicaKey(dst []byte, namespace string, raw []byte, mask Mask) ([]byte, bool) {
	spans, ok := replicaSpans(raw, mask)
	if !ok {
		return dst, false
	}
	replicaPieces(namespace, raw, spans, func(p []byte) { dst = append(dst, p...) })
	return dst, true
}

// ReplicaHash is the SHA-256 of ReplicaKey's key, made without the key.
func ReplicaHash(namespace string, raw []byte, mask Mask) ([sha256.Size]byte, bool) {
	spans, ok := replicaSpans(raw, mask)
	if !ok {
		return [sha256.Size]byte{}, false
	}
	h := sha256.New()
	replicaPieces(namespace, raw, spans, func(p []byte) { h.Write(p) })
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key, true
}

// replicaPieces gives emit the replica key in pieces: the namespace, then raw with each span
// replaced by the masked byte.
func replicaPieces(namespace string, raw []byte, spans [][2]int, emit func([]byte)) {
	mask := []byte{masked}
	emit([]byte(namespace))
	emit(mask)
	at := 0
	for _, span := range spans {
		emit(raw[at:span[0]])
		emit(mask)
		at = span[1]
	}
	emit(raw[at:])
}

// containsKey reports whether key is one of names, without converting it.
func containsKey(names []string, key []byte) bool {
	for _, n := range names {
		if string(key) == n {
			return true
		}
	}
	return false
}
