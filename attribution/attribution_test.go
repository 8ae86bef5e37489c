package attribution

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/shouldersnet/shoulders/attribution/index"
)

// word spells i in base 26: a distinct word per number.
func word(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}

// testCorpus makes records of Zipf-distributed words, each contributor owning every seventh record.
func testCorpus(seed uint64, records int) []index.Record {
	rnd := rand.New(rand.NewPCG(seed, 5))
	z := rand.NewZipf(rnd, 1.2, 2, 2000)
	var out []index.Record
	for i := range records {
		var sb strings.Builder
		for j := range 40 + rnd.IntN(120) {
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(word(int(z.Uint64())))
			if rnd.IntN(12) == 0 {
				sb.WriteByte('.')
			}
		}
		out = append(out, index.Record{ID: fmt.Sprintf("rec-%03d", i), Contributor: fmt.Sprintf("contributor-%d", i%7), Text: []byte(sb.String())})
	}
	return out
}

func model(t testing.TB, recs []index.Record) *Model {
	t.Helper()
	ix, err := index.Build(recs, index.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ix, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkSums(t *testing.T, a Attribution) {
	t.Helper()
	if a.Unattributed {
		if len(a.Contributors) != 0 || a.TotalWeight != 0 {
			t.Fatalf("unattributed but %d contributors, weight %d", len(a.Contributors), a.TotalWeight)
		}
		return
	}
	var ppm uint32
	var w uint64
	for i, c := range a.Contributors {
		ppm += c.WeightPPM
		w += c.Weight
		if i > 0 && (c.Weight > a.Contributors[i-1].Weight || c.Weight == a.Contributors[i-1].Weight && c.Contributor < a.Contributors[i-1].Contributor) {
			t.Fatalf("contributors out of order at %d: %+v", i, a.Contributors)
		}
	}
	if ppm != PPM || w != a.TotalWeight {
		t.Fatalf("contributor ppm sum %d (want %d), weight sum %d (want %d)", ppm, PPM, w, a.TotalWeight)
	}
}

func TestVerbatimCopyCreditsItsRecord(t *testing.T) {
	recs := testCorpus(1, 300)
	m := model(t, recs)
	for _, target := range []int{17, 150, 299} {
		words := strings.Fields(string(recs[target].Text))
		text := strings.Join(words[5:min(len(words), 65)], " ")
		e, err := m.Explain(text)
		if err != nil {
			t.Fatal(err)
		}
		a := e.Attribution
		checkSums(t, a)
		if a.Contributors[0].Contributor != recs[target].Contributor || a.Contributors[0].WeightPPM < 900_000 {
			t.Fatalf("copy of %s (%s): contributors %+v, want %s with nearly all the weight",
				recs[target].ID, recs[target].Contributor, a.Contributors, recs[target].Contributor)
		}
		if a.Records[0].Record != recs[target].ID || a.Records[0].WeightPPM < 900_000 {
			t.Fatalf("copy of %s: top records %+v", recs[target].ID, a.Records)
		}
		// The copy is one maximal span, found in that record.
		if len(a.Spans) == 0 || !slices.Contains(a.Spans[len(a.Spans)-1].Records, recs[target].ID) {
			t.Fatalf("copy of %s: spans %+v", recs[target].ID, a.Spans)
		}
		if err := m.VerifyExplanation(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGenerateIsReproducibleAndVerifies(t *testing.T) {
	m := model(t, testCorpus(2, 200))
	prompt := "ab ac"
	for _, temp := range []int{0, 1000, 700, 2500} {
		g := GenerateParams{MaxTokens: 80, Seed: 7, TemperatureMilli: temp, MaxSupport: 64}
		first, err := m.Generate(prompt, g)
		if err != nil {
			t.Fatal(err)
		}
		checkSums(t, first.Attribution)
		for range 3 {
			again, err := m.Generate(prompt, g)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(again)
			if string(a) != string(b) {
				t.Fatalf("temperature %d: two runs differ:\n%s\n%s", temp, a, b)
			}
		}
		if err := m.Verify(first); err != nil {
			t.Fatalf("temperature %d: genuine result refused: %v", temp, err)
		}
		// The attribution computed during generation equals the attribution of the same tokens computed from
		// scratch, which is what a validator that only has the output could do.
		ctx := append(m.ix.Tokenizer().Encode(nil, []byte(prompt)), first.OutputTokens...)
		from := len(ctx) - len(first.OutputTokens)
		scratch := m.attribute(ctx, from, m.matches(ctx, from))
		if !slices.Equal(attributionChecks(first.Attribution, scratch), attributionChecks(first.Attribution, first.Attribution)) {
			t.Fatalf("temperature %d: attribution from generation differs from matching statistics", temp)
		}
	}
	// Different seeds give different outputs (for this corpus and these seeds).
	a, _ := m.Generate(prompt, GenerateParams{MaxTokens: 40, Seed: 1, TemperatureMilli: 1000, MaxSupport: 64})
	b, _ := m.Generate(prompt, GenerateParams{MaxTokens: 40, Seed: 2, TemperatureMilli: 1000, MaxSupport: 64})
	if a.Output == b.Output {
		t.Fatalf("seeds 1 and 2 gave the same output %q", a.Output)
	}
}

func TestVerifyRefusesTamperedResults(t *testing.T) {
	m := model(t, testCorpus(3, 100))
	g, err := m.Generate("", GenerateParams{MaxTokens: 50, Seed: 3, TemperatureMilli: 1000, MaxSupport: 64})
	if err != nil {
		t.Fatal(err)
	}
	if g.Attribution.Unattributed || len(g.Attribution.Contributors) < 1 {
		t.Fatalf("generation has no attribution: %+v", g.Attribution)
	}
	tamper := map[string]func(g *Generation){
		"weight moved": func(g *Generation) {
			g.Attribution.Contributors[0].Contributor = "mallory"
		},
		"output edited":  func(g *Generation) { g.Output += "x" },
		"other index":    func(g *Generation) { g.Attribution.IndexHash = strings.Repeat("0", 64) },
		"other seed":     func(g *Generation) { g.Params.Seed++ },
		"span dropped":   func(g *Generation) { g.Attribution.Spans = nil; g.Attribution.Params.MinSpanTokens = 1 },
		"newer version":  func(g *Generation) { g.Attribution.Version++ },
		"huge parameter": func(g *Generation) { g.Attribution.Params.MaxOccurrences = 1 << 30 },
	}
	for name, f := range tamper {
		bad := *g
		bad.Attribution.Contributors = slices.Clone(g.Attribution.Contributors)
		f(&bad)
		err := m.Verify(&bad)
		if !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrInput) {
			t.Errorf("%s: Verify gave %v, want a mismatch", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestGreedyPicksMostFrequentContinuation(t *testing.T) {
	recs := []index.Record{
		{ID: "1", Contributor: "a", Text: []byte("red apple")},
		{ID: "2", Contributor: "a", Text: []byte("red apple")},
		{ID: "3", Contributor: "b", Text: []byte("red cherry")},
	}
	m := model(t, recs)
	g, err := m.Generate("red", GenerateParams{MaxTokens: 5, TemperatureMilli: 0, MaxSupport: 8})
	if err != nil {
		t.Fatal(err)
	}
	if g.Output != " apple" || g.Stop != StopEndOfRecord {
		t.Fatalf("greedy output %q (stop %s), want %q ending the record", g.Output, g.Stop, " apple")
	}
	// Plain sampling follows the counts: " apple" two times in three.
	apples := 0
	for seed := range uint64(3000) {
		g, err := m.Generate("red", GenerateParams{MaxTokens: 1, Seed: seed, TemperatureMilli: 1000, MaxSupport: 8})
		if err != nil {
			t.Fatal(err)
		}
		if g.Output == " apple" {
			apples++
		}
	}
	if apples < 1850 || apples > 2150 {
		t.Fatalf("%d apples in 3000 draws, want about 2000", apples)
	}
	// A high temperature flattens the distribution toward one in two; a low one sharpens it.
	for _, c := range []struct{ temp, lo, hi int }{{10000, 1400, 1650}, {300, 2700, 3000}} {
		apples = 0
		for seed := range uint64(3000) {
			g, _ := m.Generate("red", GenerateParams{MaxTokens: 1, Seed: seed, TemperatureMilli: c.temp, MaxSupport: 8})
			if g.Output == " apple" {
				apples++
			}
		}
		if apples < c.lo || apples > c.hi {
			t.Fatalf("temperature %d: %d apples in 3000 draws, want %d..%d", c.temp, apples, c.lo, c.hi)
		}
	}
}

func TestGenericAndUnmatchedTokensWeighNothing(t *testing.T) {
	var recs []index.Record
	for i := range 50 {
		recs = append(recs, index.Record{ID: fmt.Sprint(i), Contributor: fmt.Sprint("c", i), Text: []byte(fmt.Sprintf("the same words %s", word(1000+i)))})
	}
	ix, err := index.Build(recs, index.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.GenericCount = 10
	m, err := New(ix, p)
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.Explain("the same words")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Attribution.Unattributed || e.Attribution.Generic != 3 {
		t.Fatalf("a span in all 50 records (cap 10): %+v", e.Attribution)
	}
	e, err = m.Explain("zzzz qqqq")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Attribution.Unattributed || e.Attribution.Unmatched == 0 {
		t.Fatalf("text not in the index: %+v", e.Attribution)
	}
	e, err = m.Explain("the same words " + word(1007))
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, e.Attribution)
	if c := e.Attribution.Contributors; len(c) != 1 || c[0].Contributor != "c7" || c[0].WeightPPM != PPM {
		t.Fatalf("only the last word is specific, to record 7: %+v", c)
	}
}

func TestBadInputNamesTheField(t *testing.T) {
	m := model(t, testCorpus(4, 20))
	cases := map[string]func() error{
		"max_tokens": func() error {
			_, err := m.Generate("x", GenerateParams{MaxTokens: MaxOutputTokens + 1, TemperatureMilli: 1000, MaxSupport: 8})
			return err
		},
		"temperature_milli": func() error {
			_, err := m.Generate("x", GenerateParams{MaxTokens: 1, TemperatureMilli: -1, MaxSupport: 8})
			return err
		},
		"max_support": func() error {
			_, err := m.Generate("x", GenerateParams{MaxTokens: 1, TemperatureMilli: 1000})
			return err
		},
		"prompt is": func() error {
			_, err := m.Generate(strings.Repeat("x ", MaxPromptTokens+1), DefaultGenerateParams())
			return err
		},
		"prompt is ": func() error {
			_, err := m.Generate(strings.Repeat("x", MaxPromptBytes+1), DefaultGenerateParams())
			return err
		},
		"text is": func() error {
			_, err := m.Explain(strings.Repeat("y ", MaxTextTokens+1))
			return err
		},
		"max_occurrences": func() error {
			p := DefaultParams()
			p.MaxOccurrences = 0
			_, err := New(m.ix, p)
			return err
		},
	}
	for field, f := range cases {
		err := f()
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), strings.TrimSpace(field)) {
			t.Errorf("%s: got %v, want ErrInput naming it", field, err)
		}
	}
}

func TestLargestRemainder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 8))
	for range 2000 {
		n := 1 + rnd.IntN(20)
		w := make([]uint64, n)
		for i := range w {
			w[i] = rnd.Uint64N(1 << uint(1+rnd.IntN(46)))
		}
		w[rnd.IntN(n)] |= 1
		out := largestRemainder(w, PPM)
		var sum uint64
		for i, v := range out {
			sum += v
			for j := range out {
				if w[i] > w[j] && out[i] < out[j] {
					t.Fatalf("weights %v → %v: larger weight got less", w, out)
				}
			}
		}
		if sum != PPM {
			t.Fatalf("weights %v → %v sums to %d", w, out, sum)
		}
	}
	// Equal remainders go to the earlier key.
	if got := largestRemainder([]uint64{1, 1, 1}, 100); !slices.Equal(got, []uint64{34, 33, 33}) {
		t.Fatalf("three equal weights of 100: %v", got)
	}
}

// TestGenerationReproducibleAcrossProcesses runs the same generation in a child process (this test binary)
// and compares the bytes of the JSON results.
func TestGenerationReproducibleAcrossProcesses(t *testing.T) {
	if os.Getenv("ATTRIBUTION_CHILD") == "1" {
		return
	}
	want, err := json.Marshal(childGeneration(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildGeneration$")
	cmd.Env = append(os.Environ(), "ATTRIBUTION_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "GENERATION ") {
			line = strings.TrimPrefix(l, "GENERATION ")
		}
	}
	if line != string(want) {
		t.Fatalf("child process generated\n%s\nthis process\n%s", line, want)
	}
}

func TestChildGeneration(t *testing.T) {
	if os.Getenv("ATTRIBUTION_CHILD") != "1" {
		t.Skip("run by TestGenerationReproducibleAcrossProcesses")
	}
	b, _ := json.Marshal(childGeneration(t))
	fmt.Printf("GENERATION %s\n", b)
}

func childGeneration(t *testing.T) *Generation {
	m := model(t, testCorpus(5, 150))
	g, err := m.Generate("ab", GenerateParams{MaxTokens: 60, Seed: 12345, TemperatureMilli: 800, MaxSupport: 100})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
