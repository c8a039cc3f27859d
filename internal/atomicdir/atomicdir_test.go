package atomicdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSwapsData(t *testing.T) {
	dir := t.TempDir()
	for _, want := range []string{"one", "two"} {
		if err := Write(dir, map[string][]byte{"policy.json": []byte(want)}, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "policy.json"))
		if err != nil || string(got) != want {
			t.Fatalf("policy.json = %q, %v; want %q", got, err, want)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "policy.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("policy.json is not a symlink through ..data: %v %v", fi, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 { // ..data, one timestamped folder, policy.json
		t.Errorf("the previous version was not removed: %d entries", len(entries))
	}
}
