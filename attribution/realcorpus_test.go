package attribution

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shouldersnet/shoulders/attribution/corpus"
	"github.com/shouldersnet/shoulders/attribution/index"
	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// The real-corpus tests index GCIDE, the dictionary in Debian's dict-gcide package (about 10 M tokens in
// 200,000 entries; the first 20,000 entries with -short), written to disk and opened as a user would.

var gcide struct {
	once sync.Once
	recs []index.Record
	ix   *index.Index
	err  error
	skip string
}

func gcideIndex(t *testing.T) ([]index.Record, *index.Index) {
	t.Helper()
	gcide.once.Do(func() {
		if _, err := os.Stat(filepath.Join(corpus.GCIDEDir, "gcide.index")); err != nil {
			gcide.skip = "real corpus not installed: apt-get install -y " + corpus.GCIDEPackage
			return
		}
		limit := 0
		if testing.Short() {
			limit = 20000
		}
		gcide.recs, gcide.err = corpus.GCIDE(corpus.GCIDEDir, limit)
		if gcide.err != nil {
			return
		}
		built, err := index.Build(gcide.recs, index.BuildOptions{})
		if err != nil {
			gcide.err = err
			return
		}
		dir, err := os.MkdirTemp("", "gcide-index-")
		if err != nil {
			gcide.err = err
			return
		}
		if gcide.err = built.WriteDir(dir); gcide.err != nil {
			return
		}
		gcide.ix, gcide.err = index.Open(dir)
		os.RemoveAll(dir) // the mapping stays valid after the files are unlinked
	})
	if gcide.skip != "" {
		t.Skip(gcide.skip)
	}
	if gcide.err != nil {
		t.Fatal(gcide.err)
	}
	return gcide.recs, gcide.ix
}

func TestRealCorpusCountsMatchNaiveScan(t *testing.T) {
	recs, ix := gcideIndex(t)
	tok := ix.Tokenizer()
	var stream []uint32
	var recOf []int32
	for i, r := range recs {
		before := len(stream)
		stream = tok.Encode(stream, r.Text)
		stream = append(stream, tokenize.Separator)
		for range len(stream) - before {
			recOf = append(recOf, int32(i))
		}
	}
	if len(stream) != ix.Len() {
		t.Fatalf("index stream %d tokens, independent encoding %d", ix.Len(), len(stream))
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	for range 60 {
		start := rnd.IntN(len(stream) - 8)
		pat := stream[start : start+1+rnd.IntN(4)]
		if slices.Contains(pat, tokenize.Separator) {
			continue
		}
		var want []int
		for i := 0; i+len(pat) <= len(stream); i++ {
			if stream[i] == pat[0] && slices.Equal(stream[i:i+len(pat)], pat) {
				want = append(want, i)
			}
		}
		r := ix.Find(pat)
		if r.Count() != len(want) {
			t.Fatalf("count of %v: index %d, naive scan %d", pat, r.Count(), len(want))
		}
		if len(want) <= 2000 {
			var got []int
			for _, o := range ix.Sample(r, len(want), nil) {
				got = append(got, o.Pos)
				if int32(o.Record) != recOf[o.Pos] {
					t.Fatalf("occurrence at %d in record %d, naive %d", o.Pos, o.Record, recOf[o.Pos])
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("occurrences of %v differ from the naive scan", pat)
			}
		}
	}
}

func TestRealCorpusAttributesToTheRightContributor(t *testing.T) {
	recs, ix := gcideIndex(t)
	m, err := New(ix, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(2, 2))
	tried := 0
	for tried < 20 {
		r := recs[rnd.IntN(len(recs))]
		text := string(r.Text)
		if len(text) < 400 {
			continue
		}
		tried++
		// A passage from the middle of the entry, copied verbatim.
		passage := text[len(text)/4 : len(text)/4+300]
		e, err := m.Explain(passage)
		if err != nil {
			t.Fatal(err)
		}
		a := e.Attribution
		checkSums(t, a)
		if a.Contributors[0].Contributor != r.Contributor || a.Contributors[0].WeightPPM < 800_000 {
			t.Errorf("passage of %s (%s): contributors %+v", r.ID, r.Contributor, a.Contributors[:min(3, len(a.Contributors))])
		}
		if !slices.ContainsFunc(a.Records, func(s RecordShare) bool { return s.Record == r.ID }) {
			t.Errorf("passage of %s: the entry is not among the top records %+v", r.ID, a.Records)
		}
	}
}

func TestRealCorpusGenerationIsReproducible(t *testing.T) {
	_, ix := gcideIndex(t)
	m, err := New(ix, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, prompt := range []string{"Shoulder", "The giant", "A dictionary of"} {
		g := GenerateParams{MaxTokens: 128, Seed: 2024, TemperatureMilli: 900, MaxSupport: 512}
		a, err := m.Generate(prompt, g)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := m.Generate(prompt, g)
		if a.Output != b.Output || !slices.Equal(attributionChecks(a.Attribution, b.Attribution), attributionChecks(a.Attribution, a.Attribution)) {
			t.Fatalf("prompt %q: two runs differ", prompt)
		}
		if err := m.Verify(a); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(a.Output) == "" {
			t.Fatalf("prompt %q generated nothing", prompt)
		}
		checkSums(t, a.Attribution)
	}
}
