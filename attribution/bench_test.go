package attribution

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shouldersnet/shoulders/attribution/corpus"
	"github.com/shouldersnet/shoulders/attribution/index"
)

// The go test benchmarks use a 4M-token Zipf corpus built once; `shoulders bench attribution` measures the
// same operations at 100M tokens beside index/suffixarray.

var benchModel = sync.OnceValues(func() (*Model, error) {
	ix, err := index.Build(corpus.Zipf(1, 4_000_000, 30_000), index.BuildOptions{})
	if err != nil {
		return nil, err
	}
	return New(ix, DefaultParams())
})

func benchSetup(b *testing.B) *Model {
	m, err := benchModel()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// window returns n tokens of the stream ending at a random position inside a record.
func window(ix *index.Index, rnd *rand.Rand, n int) []uint32 {
	for {
		r := ix.Record(rnd.IntN(ix.Records()))
		if r.Tokens >= n {
			end := r.Start + n + rnd.IntN(r.Tokens-n+1)
			return ix.Stream(nil, end-n, end)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	recs := corpus.Zipf(2, 1_000_000, 30_000)
	b.SetBytes(1_000_000) // "bytes" are tokens: MB/s reads as M tokens/s
	for b.Loop() {
		if _, err := index.Build(recs, index.BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCount(b *testing.B) {
	m := benchSetup(b)
	rnd := rand.New(rand.NewPCG(1, 1))
	pats := make([][]uint32, 1024)
	for i := range pats {
		pats[i] = window(m.ix, rnd, 1+i%4)
	}
	i := 0
	for b.Loop() {
		m.ix.Count(pats[i%len(pats)])
		i++
	}
}

// BenchmarkQueryWithAttribution is one generation step from scratch on a 32-token context: longest
// occurring suffix, next token drawn, and that token attributed.
func BenchmarkQueryWithAttribution(b *testing.B) {
	m := benchSetup(b)
	rnd := rand.New(rand.NewPCG(2, 2))
	ctxs := make([][]uint32, 1024)
	for i := range ctxs {
		ctxs[i] = window(m.ix, rnd, 32)
		if i%2 == 0 {
			ctxs[i][31] = window(m.ix, rnd, 1)[0]
		}
	}
	g := GenerateParams{MaxTokens: 1, TemperatureMilli: 1000, MaxSupport: 1024}
	i := 0
	for b.Loop() {
		g.Seed = uint64(i)
		if _, err := m.GenerateTokens(ctxs[i%len(ctxs)], g); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkExplain256(b *testing.B) {
	m := benchSetup(b)
	rnd := rand.New(rand.NewPCG(3, 3))
	texts := make([][]uint32, 64)
	for i := range texts {
		for len(texts[i]) < 256 {
			texts[i] = append(texts[i], window(m.ix, rnd, 32)...)
		}
	}
	i := 0
	for b.Loop() {
		if _, err := m.ExplainTokens(texts[i%len(texts)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGenerate256(b *testing.B) {
	m := benchSetup(b)
	rnd := rand.New(rand.NewPCG(4, 4))
	i := 0
	for b.Loop() {
		g := GenerateParams{MaxTokens: 256, Seed: uint64(i), TemperatureMilli: 1000, MaxSupport: 1024}
		if _, err := m.GenerateTokens(window(m.ix, rnd, 8), g); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
