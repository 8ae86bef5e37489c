package index

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// randomCorpus makes records of words from a small vocabulary, so that patterns repeat within and across
// records; some records repeat one word, the case a comparison sort goes quadratic on.
func randomCorpus(seed uint64, records, maxWords int) []Record {
	rnd := rand.New(rand.NewPCG(seed, 99))
	words := []string{"the", "cat", "sat", "on", "mat", "a", "dog", "ran", ".", ",", "\n", "é", "naïve", "\xff"}
	var out []Record
	for i := range records {
		var sb strings.Builder
		n := 1 + rnd.IntN(maxWords)
		repeat := rnd.IntN(10) == 0
		for j := range n {
			w := words[rnd.IntN(len(words))]
			if repeat {
				w = "la"
			}
			if j > 0 && rnd.IntN(4) != 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
		}
		out = append(out, Record{ID: fmt.Sprintf("r%d", i), Contributor: fmt.Sprintf("c%d", i%3), Text: []byte(sb.String())})
	}
	return out
}

func build(t testing.TB, recs []Record, opts BuildOptions) *Index {
	t.Helper()
	ix, err := Build(recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// naiveStream encodes the records independently of the index.
func naiveStream(tok *tokenize.Tokenizer, recs []Record) (stream []uint32, recOf []int) {
	for i, r := range recs {
		ids := tok.Encode(nil, r.Text)
		for range ids {
			recOf = append(recOf, i)
		}
		stream = append(stream, ids...)
		stream = append(stream, tokenize.Separator)
		recOf = append(recOf, i)
	}
	return stream, recOf
}

func naiveOccurrences(stream, pat []uint32) []int {
	var out []int
	for i := 0; i+len(pat) <= len(stream); i++ {
		if slices.Equal(stream[i:i+len(pat)], pat) {
			out = append(out, i)
		}
	}
	return out
}

// checkAgainstNaive compares every query with a scan of the stream, for patterns cut from the stream and
// patterns that do not occur.
func checkAgainstNaive(t *testing.T, ix *Index, recs []Record, rnd *rand.Rand, patterns int) {
	t.Helper()
	stream, recOf := naiveStream(ix.Tokenizer(), recs)
	if ix.Len() != len(stream) {
		t.Fatalf("stream has %d tokens, naive encoding %d", ix.Len(), len(stream))
	}
	for range patterns {
		var pat []uint32
		start := rnd.IntN(len(stream))
		l := 1 + rnd.IntN(6)
		for p := start; p < len(stream) && len(pat) < l && stream[p] != tokenize.Separator; p++ {
			pat = append(pat, stream[p])
		}
		if len(pat) == 0 || rnd.IntN(5) == 0 {
			// A pattern that may not occur: random tokens.
			pat = pat[:0]
			for range 1 + rnd.IntN(3) {
				pat = append(pat, 1+uint32(rnd.IntN(ix.Tokenizer().Size()-1)))
			}
		}
		want := naiveOccurrences(stream, pat)
		r := ix.Find(pat)
		if r.Count() != len(want) {
			t.Fatalf("Count(%v) = %d, naive scan finds %d", pat, r.Count(), len(want))
		}
		// All occurrences, with their records.
		occ := ix.Sample(r, len(want)+1, nil)
		var got []int
		for _, o := range occ {
			got = append(got, o.Pos)
			if o.Record != recOf[o.Pos] || o.Offset != o.Pos-ix.Record(o.Record).Start {
				t.Fatalf("occurrence at %d: record %d offset %d, want record %d", o.Pos, o.Record, o.Offset, recOf[o.Pos])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("occurrences of %v: %v, naive %v", pat, got, want)
		}
		// A capped sample is a subset of distinct occurrences of the requested size.
		if len(want) > 3 {
			s := ix.Sample(r, 3, nil)
			if len(s) != 3 || s[0].Pos == s[1].Pos || s[1].Pos == s[2].Pos {
				t.Fatalf("Sample(max 3) of %d occurrences = %v", len(want), s)
			}
			for _, o := range s {
				if _, ok := slices.BinarySearch(want, o.Pos); !ok {
					t.Fatalf("sampled position %d is not an occurrence", o.Pos)
				}
			}
		}
		// Next-token distribution, exact.
		counts := map[uint32]int{}
		for _, p := range want {
			counts[stream[p+len(pat)]]++
		}
		conts := ix.Next(r, len(want)+1, nil)
		if len(conts) != len(counts) {
			t.Fatalf("Next(%v) has %d continuations, naive %d", pat, len(conts), len(counts))
		}
		for i, c := range conts {
			if counts[c.Token] != c.Count() {
				t.Fatalf("Next(%v): token %d follows %d times, naive %d", pat, c.Token, c.Count(), counts[c.Token])
			}
			if i > 0 && c.Token <= conts[i-1].Token {
				t.Fatalf("Next(%v) not in ID order", pat)
			}
			if e := ix.Extend(r, c.Token); e != c.Range {
				t.Fatalf("Extend(%v, %d) = %v, Next gave %v", pat, c.Token, e, c.Range)
			}
			if f := ix.Find(append(slices.Clone(pat), c.Token)); c.Token != tokenize.Separator && f != c.Range {
				t.Fatalf("Find(pattern+%d) = %v, Next gave %v", c.Token, f, c.Range)
			}
		}
		// Sampled next-token distribution: counts still exact, and frequent continuations present.
		if len(want) > 4 {
			sampled := ix.Next(r, 4, nil)
			for _, c := range sampled {
				if counts[c.Token] != c.Count() {
					t.Fatalf("sampled Next(%v): token %d count %d, naive %d", pat, c.Token, c.Count(), counts[c.Token])
				}
			}
			for tok, n := range counts {
				if n*4 >= len(want) && !slices.ContainsFunc(sampled, func(c Continuation) bool { return c.Token == tok }) {
					t.Fatalf("sampled Next(%v) misses token %d with %d of %d occurrences", pat, tok, n, len(want))
				}
			}
		}
		// Longest suffix of a context ending with the pattern.
		ctx := append([]uint32{uint32(ix.Tokenizer().Size() - 1)}, pat...)
		ls := ix.LongestSuffix(ctx)
		wantLen := 0
		for k := 1; k <= len(ctx); k++ {
			if len(naiveOccurrences(stream, ctx[len(ctx)-k:])) > 0 {
				wantLen = k
			}
		}
		wantCount := len(stream) // the empty suffix "occurs" everywhere: All()
		if wantLen > 0 {
			wantCount = len(naiveOccurrences(stream, ctx[len(ctx)-wantLen:]))
		}
		if ls.Len != wantLen || ls.Count() != wantCount {
			t.Fatalf("LongestSuffix(%v) = %+v, naive length %d", ctx, ls, wantLen)
		}
	}
}

func TestQueriesAgainstNaiveScan(t *testing.T) {
	for seed := range uint64(6) {
		recs := randomCorpus(seed, 5+int(seed)*40, 60)
		ix := build(t, recs, BuildOptions{})
		checkAgainstNaive(t, ix, recs, rand.New(rand.NewPCG(seed, 1)), 300)
	}
}

func TestQueriesWith32BitTokens(t *testing.T) {
	// Enough distinct pieces to pass 65,536 IDs.
	var recs []Record
	for i := range 700 {
		var sb strings.Builder
		for j := range 100 {
			sb.WriteString(" " + letters(i*100+j))
		}
		recs = append(recs, Record{ID: fmt.Sprint(i), Contributor: "c", Text: []byte(sb.String() + " common tail")})
	}
	ix := build(t, recs, BuildOptions{MaxVocab: 1 << 17})
	if ix.Manifest().TokenBytes != 4 {
		t.Fatalf("token_bytes = %d for a vocabulary of %d", ix.Manifest().TokenBytes, ix.Tokenizer().Size())
	}
	checkAgainstNaive(t, ix, recs, rand.New(rand.NewPCG(5, 5)), 200)
}

// letters spells i in base 26 with the letters a-z: a distinct word per number.
func letters(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	recs := randomCorpus(42, 50, 80)
	built := build(t, recs, BuildOptions{})
	dir := filepath.Join(t.TempDir(), "idx")
	if err := built.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Hash() != built.Hash() {
		t.Fatalf("opened hash %s, built %s", ix.Hash(), built.Hash())
	}
	checkAgainstNaive(t, ix, recs, rand.New(rand.NewPCG(1, 1)), 200)
	for i := range recs {
		if ix.Record(i) != built.Record(i) {
			t.Fatalf("record %d: opened %+v, built %+v", i, ix.Record(i), built.Record(i))
		}
	}
	if err := built.WriteDir(dir); err == nil {
		t.Fatal("WriteDir into a non-empty directory succeeded")
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	recs := randomCorpus(7, 100, 50)
	a := build(t, recs, BuildOptions{})
	b := build(t, slices.Clone(recs), BuildOptions{})
	if a.Hash() != b.Hash() {
		t.Fatal("two builds of the same corpus have different index hashes")
	}
	recs[3].Contributor = "someone else"
	if c := build(t, recs, BuildOptions{}); c.Hash() == a.Hash() {
		t.Fatal("changing a contributor did not change the index hash")
	}
}

func TestBuildRefusesBadCorpora(t *testing.T) {
	ok := Record{ID: "a", Contributor: "c", Text: []byte("text")}
	cases := map[string][]Record{
		"no records":       nil,
		"empty record":     {ok, {ID: "b", Contributor: "c"}},
		"duplicate ID":     {ok, ok},
		"no contributor":   {{ID: "a", Text: []byte("x")}},
		"empty ID":         {{Contributor: "c", Text: []byte("x")}},
		"long ID":          {{ID: strings.Repeat("i", MaxIDBytes+1), Contributor: "c", Text: []byte("x")}},
		"non-UTF-8 ID":     {{ID: "\xff", Contributor: "c", Text: []byte("x")}},
		"long contributor": {{ID: "a", Contributor: strings.Repeat("c", MaxContributorBytes+1), Text: []byte("x")}},
	}
	for name, recs := range cases {
		if _, err := Build(recs, BuildOptions{}); !errors.Is(err, ErrCorpus) {
			t.Errorf("%s: got %v, want ErrCorpus", name, err)
		}
	}
	bin := []Record{{ID: "bin", Contributor: "c", Text: []byte("ok \xff\xfe")}}
	if _, err := Build(bin, BuildOptions{TextOnly: true}); err == nil || !strings.Contains(err.Error(), "byte 3") {
		t.Errorf("text-only corpus with invalid UTF-8: got %v, want an error naming byte 3", err)
	}
	ix, err := Build(bin, BuildOptions{})
	if err != nil {
		t.Fatalf("byte fallback refused a non-UTF-8 record: %v", err)
	}
	back, err := ix.Tokenizer().Decode(nil, ix.Stream(nil, 0, ix.Record(0).Tokens))
	if err != nil || string(back) != "ok \xff\xfe" {
		t.Fatalf("non-UTF-8 record decodes to %q, %v", back, err)
	}
}

func TestOpenDetectsDamage(t *testing.T) {
	built := build(t, randomCorpus(3, 30, 40), BuildOptions{})
	base := filepath.Join(t.TempDir(), "base")
	if err := built.WriteDir(base); err != nil {
		t.Fatal(err)
	}
	damage := map[string]func(dir string){
		"truncated sa.bin": func(dir string) { truncate(t, filepath.Join(dir, "sa.bin"), -1) },
		"flipped byte in tokens.bin": func(dir string) {
			flip(t, filepath.Join(dir, "tokens.bin"), 5)
		},
		"flipped byte in records.bin": func(dir string) { flip(t, filepath.Join(dir, "records.bin"), 12) },
		"missing unigram.bin":         func(dir string) { os.Remove(filepath.Join(dir, "unigram.bin")) },
		"missing manifest":            func(dir string) { os.Remove(filepath.Join(dir, "manifest.json")) },
		"edited manifest": func(dir string) {
			p := filepath.Join(dir, "manifest.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"records": 30`, `"records": 31`, 1)), 0o644)
		},
		"manifest not JSON": func(dir string) { os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{"), 0o644) },
	}
	for name, f := range damage {
		dir := filepath.Join(t.TempDir(), "idx")
		copyDir(t, base, dir)
		f(dir)
		ix, err := Open(dir)
		if !errors.Is(err, ErrIndex) {
			if ix != nil {
				ix.Close()
			}
			t.Errorf("%s: Open gave %v, want ErrIndex", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func truncate(t *testing.T, path string, by int64) {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()+by); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t testing.TB, from, to string) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPackInPlace(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 2, 3, 5, 17, 64, 1000} {
		for _, w := range []uint{1, 7, 13, 27, 31, 32} {
			vals := make([]int32, n)
			for i := range vals {
				vals[i] = int32(rnd.Uint32() & (1<<w - 1))
			}
			want := slices.Clone(vals)
			p := newPacked(packInPlace(vals, w), w)
			if int64(len(p.data)) != packedSize(n, w) {
				t.Fatalf("n=%d w=%d: %d bytes, want %d", n, w, len(p.data), packedSize(n, w))
			}
			for i, v := range want {
				if got := p.get(i); got != int(uint32(v)) {
					t.Fatalf("n=%d w=%d: entry %d = %d, want %d", n, w, i, got, v)
				}
			}
		}
	}
}
