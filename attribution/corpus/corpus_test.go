package corpus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shouldersnet/shoulders/attribution/index"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilesAndLines(t *testing.T) {
	a := write(t, "a.txt", "first line\r\n\nsecond line\n")
	recs, err := Files([]string{a}, "alice")
	if err != nil || len(recs) != 1 || recs[0].ID != a || recs[0].Contributor != "alice" || string(recs[0].Text) != "first line\r\n\nsecond line\n" {
		t.Fatalf("Files: %+v, %v", recs, err)
	}
	recs, err = Lines([]string{a}, "bob")
	if err != nil || len(recs) != 2 || recs[0].ID != a+":1" || string(recs[0].Text) != "first line" || recs[1].ID != a+":3" {
		t.Fatalf("Lines: %+v, %v", recs, err)
	}
	if _, err := Files([]string{write(t, "empty", "")}, "c"); !errors.Is(err, ErrInput) {
		t.Fatalf("empty file: %v", err)
	}
	if _, err := Files([]string{filepath.Join(t.TempDir(), "missing")}, "c"); !errors.Is(err, ErrInput) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestJSONL(t *testing.T) {
	p := write(t, "c.jsonl", `{"contributor":"alice","text":"hello there"}`+"\n\n"+`{"id":"x","text":"general kenobi"}`+"\n")
	recs, err := JSONL([]string{p}, "default")
	if err != nil {
		t.Fatal(err)
	}
	want := []index.Record{{ID: p + ":1", Contributor: "alice", Text: []byte("hello there")}, {ID: "x", Contributor: "default", Text: []byte("general kenobi")}}
	if len(recs) != 2 || recs[0].ID != want[0].ID || recs[0].Contributor != "alice" || recs[1].ID != "x" || recs[1].Contributor != "default" || string(recs[1].Text) != "general kenobi" {
		t.Fatalf("JSONL: %+v", recs)
	}
	bad := map[string]string{
		`{"contributor":"a"}`: ":1: missing or empty \"text\"",
		`{"text":"t"}`:        ":1: missing \"contributor\"",
		"{\"text\":\"t\",\"contributor\":\"a\"}\n{oops": ":2:",
		`{"text":"t","contributor":"a","extra":1}`:      "unknown field",
	}
	for content, want := range bad {
		_, err := JSONL([]string{write(t, "bad.jsonl", content)}, "")
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", content, err, want)
		}
	}
}

func TestZipfIsDeterministic(t *testing.T) {
	a := Zipf(1, 20000, 500)
	b := Zipf(1, 20000, 500)
	if len(a) != len(b) {
		t.Fatal("two corpora of the same seed differ in length")
	}
	for i := range a {
		if a[i].ID != b[i].ID || string(a[i].Text) != string(b[i].Text) {
			t.Fatalf("record %d differs", i)
		}
	}
	ix, err := index.Build(a, index.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ix.TextTokens(); n < 20000 || n > 20500 {
		t.Fatalf("asked for 20000 tokens, got %d", n)
	}
}

func TestGCIDE(t *testing.T) {
	if _, err := os.Stat(filepath.Join(GCIDEDir, "gcide.index")); err != nil {
		t.Skipf("GCIDE not installed (apt-get install -y %s): %v", GCIDEPackage, err)
	}
	recs, err := GCIDE(GCIDEDir, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2000 {
		t.Fatalf("%d records, want 2000", len(recs))
	}
	for _, r := range recs[:50] {
		head := strings.TrimPrefix(strings.SplitN(r.ID, "#", 2)[0], "gcide:")
		if !strings.Contains(strings.ToLower(string(r.Text)), strings.ToLower(head)) {
			t.Fatalf("entry %s does not mention its headword: %q", r.ID, r.Text)
		}
	}
}

func TestDictB64(t *testing.T) {
	for s, want := range map[string]uint64{"A": 0, "B": 1, "/": 63, "BA": 64, "5I": 57*64 + 8} {
		if got, err := dictB64(s); err != nil || got != want {
			t.Errorf("dictB64(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if _, err := dictB64("a*"); err == nil {
		t.Error("bad digit accepted")
	}
}
