package chains

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pinned files chains by one label their podSelector pins: a matchLabels pair, or a key with
// the values of an In expression. Only pods carrying such a label can be selected, so a lookup
// by a pod's labels (injection: which chains may select this pod) or by what another selector
// allows (validation: which chains may select a pod together with this one) visits the chains
// filed under those labels, plus the few that pin no label, instead of every chain.
//
// Each chain is filed under the pinned label shared by the fewest chains. T is the caller's
// handle of a chain (a [Compiled] chain, or the chain itself); podSelector returns its
// podSelector. A Pinned is not safe for concurrent writes and reads: callers that update it
// ([Pinned.Add], [Pinned.Remove]) guard it.
type Pinned[T comparable] struct {
	podSelector func(T) *metav1.LabelSelector
	keys        map[string]*pinnedKey[T]
	unpinned    []T // the podSelector pins no label
	// freq counts the chains that pin each label value, filed there or not: the cost of filing
	// a chain under that label.
	freq map[labelPair]int
}

type pinnedKey[T comparable] struct {
	byValue map[string][]T
	all     []T // every chain filed under the key, once
}

type labelPair struct{ key, value string }

// pinnedLabel is a requirement of a podSelector that pins a label to one of a few values.
type pinnedLabel struct {
	key    string
	values []string // sorted, unique
}

// pinsOf returns the labels ps pins, sorted by key for a choice independent of map order. An
// In expression without values pins nothing (the selector does not convert).
func pinsOf(ps *metav1.LabelSelector) []pinnedLabel {
	if ps == nil {
		return nil
	}
	var out []pinnedLabel
	for k, v := range ps.MatchLabels {
		out = append(out, pinnedLabel{k, []string{v}})
	}
	for _, e := range ps.MatchExpressions {
		if e.Operator == metav1.LabelSelectorOpIn && len(e.Values) > 0 {
			out = append(out, pinnedLabel{e.Key, slices.Compact(slices.Sorted(slices.Values(e.Values)))})
		}
	}
	slices.SortStableFunc(out, func(x, y pinnedLabel) int { return strings.Compare(x.key, y.key) })
	return out
}

// NewPinned files items; podSelector returns an item's podSelector (nil selects every pod).
// Filing all items at once counts every pinned label first, so each item goes under the label
// that is rarest among all of them.
func NewPinned[T comparable](podSelector func(T) *metav1.LabelSelector, items []T) *Pinned[T] {
	x := &Pinned[T]{podSelector: podSelector, keys: map[string]*pinnedKey[T]{}, freq: map[labelPair]int{}}
	pins := make([][]pinnedLabel, len(items))
	for i, item := range items {
		pins[i] = pinsOf(podSelector(item))
		x.count(pins[i], 1)
	}
	for i, item := range items {
		x.file(item, pins[i])
	}
	return x
}

// Add files one more item, under the label rarest among the items filed so far.
func (x *Pinned[T]) Add(item T) {
	pins := pinsOf(x.podSelector(item))
	x.count(pins, 1)
	x.file(item, pins)
}

// Remove unfiles an item that [Pinned.Add] or [NewPinned] filed; its podSelector must be the
// one it was filed with. It reports whether the item was filed.
func (x *Pinned[T]) Remove(item T) bool {
	pins := pinsOf(x.podSelector(item))
	for _, p := range pins {
		pk := x.keys[p.key]
		if pk == nil || !slices.Contains(pk.all, item) {
			continue
		}
		x.count(pins, -1)
		pk.all = deleteItem(pk.all, item)
		// It was filed under one of the pins of this key (a selector may pin a key twice).
		for _, q := range pins {
			if q.key != p.key {
				continue
			}
			for _, v := range q.values {
				if rest := deleteItem(pk.byValue[v], item); len(rest) > 0 {
					pk.byValue[v] = rest
				} else {
					delete(pk.byValue, v)
				}
			}
		}
		if len(pk.all) == 0 {
			delete(x.keys, p.key)
		}
		return true
	}
	if slices.Contains(x.unpinned, item) {
		x.count(pins, -1)
		x.unpinned = deleteItem(x.unpinned, item)
		return true
	}
	return false
}

func deleteItem[T comparable](list []T, item T) []T {
	return slices.DeleteFunc(list, func(e T) bool { return e == item })
}

func (x *Pinned[T]) count(pins []pinnedLabel, delta int) {
	for _, p := range pins {
		for _, v := range p.values {
			pair := labelPair{p.key, v}
			if x.freq[pair] += delta; x.freq[pair] <= 0 {
				delete(x.freq, pair)
			}
		}
	}
}

// file puts item under the pin of pins shared by the fewest items (the first by key among
// equals), or with the unpinned ones.
func (x *Pinned[T]) file(item T, pins []pinnedLabel) {
	best, bestCost := -1, 0
	for i, p := range pins {
		cost := 0
		for _, v := range p.values {
			cost += x.freq[labelPair{p.key, v}]
		}
		if best < 0 || cost < bestCost {
			best, bestCost = i, cost
		}
	}
	if best < 0 {
		x.unpinned = append(x.unpinned, item)
		return
	}
	p := pins[best]
	pk := x.keys[p.key]
	if pk == nil {
		pk = &pinnedKey[T]{byValue: map[string][]T{}}
		x.keys[p.key] = pk
	}
	pk.all = append(pk.all, item)
	for _, v := range p.values {
		pk.byValue[v] = append(pk.byValue[v], item)
	}
}

// Len is the number of items filed.
func (x *Pinned[T]) Len() int {
	n := len(x.unpinned)
	for _, pk := range x.keys {
		n += len(pk.all)
	}
	return n
}

// MaySelect calls visit, once each, for the items that may select a pod with podLabels: those
// filed under one of its labels and those that pin none. It stops at the first error. It does
// not allocate.
func (x *Pinned[T]) MaySelect(podLabels map[string]string, visit func(T) error) error {
	for k, v := range podLabels {
		if pk := x.keys[k]; pk != nil {
			for _, item := range pk.byValue[v] {
				if err := visit(item); err != nil {
					return err
				}
			}
		}
	}
	for _, item := range x.unpinned {
		if err := visit(item); err != nil {
			return err
		}
	}
	return nil
}

// MayOverlap calls visit, once each, for the items that may select a pod together with another
// selector: allows(key) says which values of a label that selector allows; anyValue when it allows
// every value or the label's absence (it does not pin the key), otherwise only values (none, for
// example, when it requires the label to be absent). An item filed under a key is visited when
// the other selector allows one of its values there; items that pin nothing always are. It
// allocates only when values has more than one element.
func (x *Pinned[T]) MayOverlap(allows func(key string) (values []string, anyValue bool), visit func(T)) {
	for k, pk := range x.keys {
		values, anyValue := allows(k)
		switch {
		case anyValue:
			for _, item := range pk.all {
				visit(item)
			}
		case len(values) == 1:
			for _, item := range pk.byValue[values[0]] {
				visit(item)
			}
		case len(values) > 1:
			// An item filed under several of these values is visited once.
			seen := map[T]bool{}
			for _, v := range values {
				for _, item := range pk.byValue[v] {
					if !seen[item] {
						seen[item] = true
						visit(item)
					}
				}
			}
		}
	}
	for _, item := range x.unpinned {
		visit(item)
	}
}

// MayOverlapCount is at most the number of items MayOverlap would visit, without visiting
// them: for choosing between it and another way to find them.
func (x *Pinned[T]) MayOverlapCount(allows func(key string) (values []string, anyValue bool)) int {
	n := len(x.unpinned)
	for k, pk := range x.keys {
		values, anyValue := allows(k)
		if anyValue {
			n += len(pk.all)
			continue
		}
		for _, v := range values {
			n += len(pk.byValue[v])
		}
	}
	return n
}
