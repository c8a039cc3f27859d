// Package boundedmemo is a concurrent map bounded twice: by the number of entries and by the
// bytes they keep, as their caller estimates them. The webhook's answer memo is one; the bounds
// are the point, so that no stream of entries makes it grow past its budget.
package boundedmemo

import "sync"

// Memo keeps values by key, at most maxEntries of them and at most maxBytes of their sizes.
// When a new value does not fit, arbitrary entries (in the map's order) are dropped until it
// does; a value larger than maxBytes alone is refused. Values are kept by pointer, so that Drop
// forgets an entry only while it still holds the value its caller saw.
type Memo[K comparable, V any] struct {
	mu         sync.RWMutex
	entries    map[K]entry[V]
	bytes      int // the sum of the entries' sizes
	maxEntries int
	maxBytes   int
	onChange   func(entries, bytes int)
}

type entry[V any] struct {
	value *V
	size  int
}

// New returns a memo of at most maxEntries entries and maxBytes bytes, or nil (no memo) when
// either is not positive. onChange, when not nil, is called with the memo's usage after every
// change, under its lock, so that a gauge set from it never goes back in time.
func New[K comparable, V any](maxEntries, maxBytes int, onChange func(entries, bytes int)) *Memo[K, V] {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil
	}
	return &Memo[K, V]{entries: make(map[K]entry[V], maxEntries), maxEntries: maxEntries, maxBytes: maxBytes, onChange: onChange}
}

// Get returns the value kept under key, or nil.
func (m *Memo[K, V]) Get(key K) *V {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.entries[key].value
}

// Put keeps v under key, counting size bytes for it, unless size alone is over the budget; it
// reports whether v is kept. A value already under key is replaced.
func (m *Memo[K, V]) Put(key K, v *V, size int) bool {
	if size > m.maxBytes {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(key)
	for k := range m.entries { // arbitrary ones, in the map's order, until v fits
		if len(m.entries) < m.maxEntries && m.bytes+size <= m.maxBytes {
			break
		}
		m.deleteLocked(k)
	}
	m.entries[key] = entry[V]{value: v, size: size}
	m.bytes += size
	m.changed()
	return true
}

// Drop forgets the entry under key if it still holds v (and not a value put since).
func (m *Memo[K, V]) Drop(key K, v *V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && e.value == v {
		m.deleteLocked(key)
		m.changed()
	}
}

// Usage returns how many entries the memo keeps and the sum of their sizes.
func (m *Memo[K, V]) Usage() (entries, bytes int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries), m.bytes
}

// All calls yield with every entry's key and value until it returns false, under the read lock:
// yield must not change the memo.
func (m *Memo[K, V]) All(yield func(K, *V) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k, e := range m.entries {
		if !yield(k, e.value) {
			return
		}
	}
}

func (m *Memo[K, V]) deleteLocked(key K) {
	if old, ok := m.entries[key]; ok {
		m.bytes -= old.size
		delete(m.entries, key)
	}
}

// changed calls onChange; m.mu is held.
func (m *Memo[K, V]) changed() {
	if m.onChange != nil {
		m.onChange(len(m.entries), m.bytes)
	}
}
