package boundedmemo

import "testing"

type put struct {
	key, size int
	kept      bool // Put's answer
}

// TestBounds: each case puts values in order and checks Put's answer, what is kept, and that
// the counted bytes are the kept sizes' sum after every step.
func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		maxEntries, maxBytes int
		puts                 []put
		wantEntries          int
		wantBytes            int
	}{
		{"count cap", 2, 1000, []put{{1, 10, true}, {2, 10, true}, {3, 10, true}}, 2, 20},
		{"byte cap", 10, 100, []put{{1, 60, true}, {2, 60, true}}, 1, 60},
		{"byte cap drops until it fits", 10, 100, []put{{1, 30, true}, {2, 30, true}, {3, 30, true}, {4, 90, true}}, 1, 90},
		{"exactly the budget", 1, 100, []put{{1, 100, true}}, 1, 100},
		{"oversize refused", 10, 100, []put{{1, 10, true}, {2, 101, false}}, 1, 10},
		{"replace counts the new size", 10, 100, []put{{1, 40, true}, {1, 70, true}}, 1, 70},
		{"replace does not evict for itself", 1, 100, []put{{1, 90, true}, {1, 90, true}}, 1, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New[int, int](tc.maxEntries, tc.maxBytes, nil)
			values := map[int]*int{}
			for i, p := range tc.puts {
				v := new(int)
				if got := m.Put(p.key, v, p.size); got != p.kept {
					t.Fatalf("put %d: kept %v, want %v", i, got, p.kept)
				}
				if p.kept {
					values[p.key] = v
					if m.Get(p.key) != v {
						t.Fatalf("put %d: the newest value is not kept", i)
					}
				} else if m.Get(p.key) == v {
					t.Fatalf("put %d: a refused value is kept", i)
				}
				checkSum(t, m)
			}
			if n, b := m.Usage(); n != tc.wantEntries || b != tc.wantBytes {
				t.Errorf("usage %d entries, %d bytes; want %d, %d", n, b, tc.wantEntries, tc.wantBytes)
			}
		})
	}
}

// TestDrop: Drop forgets an entry only while it holds the value given, and gives its bytes back.
func TestDrop(t *testing.T) {
	var reported [2]int
	m := New[string, int](4, 100, func(n, b int) { reported = [2]int{n, b} })
	first, second := new(int), new(int)
	m.Put("a", first, 30)
	m.Put("a", second, 40)
	m.Drop("a", first) // replaced since: kept
	if m.Get("a") != second {
		t.Fatal("Drop of a replaced value forgot the new one")
	}
	m.Put("b", new(int), 10)
	m.Drop("a", second)
	if m.Get("a") != nil {
		t.Error("Drop of the kept value left it")
	}
	if n, b := m.Usage(); n != 1 || b != 10 || reported != [2]int{1, 10} {
		t.Errorf("after Drop: usage %d, %d; reported %v; want 1, 10", n, b, reported)
	}
	checkSum(t, m)
}

// TestStaysWithinItsBudget: whatever sizes come, the memo keeps at most its count and bytes
// and always the newest value that fits.
func TestStaysWithinItsBudget(t *testing.T) {
	const maxEntries, maxBytes = 8, 4096
	m := New[int, int](maxEntries, maxBytes, nil)
	for i := range 200 {
		size := 256 + (i*37)%1500
		v := new(int)
		m.Put(i%50, v, size)
		if n, b := m.Usage(); n > maxEntries || b > maxBytes {
			t.Fatalf("after %d puts: %d entries, %d bytes; over %d, %d", i+1, n, b, maxEntries, maxBytes)
		}
		if m.Get(i%50) != v {
			t.Fatalf("put %d (%d bytes) was not kept", i, size)
		}
		checkSum(t, m)
	}
}

func TestNoBudgetNoMemo(t *testing.T) {
	for _, bounds := range [][2]int{{0, 10}, {10, 0}, {-1, -1}} {
		if New[int, int](bounds[0], bounds[1], nil) != nil {
			t.Errorf("New(%d, %d) is a memo, want nil", bounds[0], bounds[1])
		}
	}
}

// checkSum: the counted bytes are the kept entries' sizes added up.
func checkSum[K comparable, V any](t *testing.T, m *Memo[K, V]) {
	t.Helper()
	sum := 0
	for _, e := range m.entries {
		sum += e.size
	}
	if _, b := m.Usage(); b != sum {
		t.Fatalf("the memo counts %d bytes, its entries add up to %d", b, sum)
	}
}
