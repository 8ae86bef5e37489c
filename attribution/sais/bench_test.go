package sais

import (
	"math/rand/v2"
	"testing"
)

// zipfText returns n symbols from a Zipf distribution over sigma symbols: roughly the token statistics of
// natural text, which is what the attribution index sorts.
func zipfText(n, sigma int) []uint16 {
	rnd := rand.New(rand.NewPCG(7, 7))
	z := rand.NewZipf(rnd, 1.1, 1, uint64(sigma-1))
	text := make([]uint16, n)
	for i := range text {
		text[i] = uint16(z.Uint64())
	}
	return text
}

func BenchmarkSortZipf(b *testing.B) {
	const n = 1 << 23
	text := zipfText(n, 1<<16)
	sa := make([]int32, n)
	b.SetBytes(n) // "bytes" here are tokens: MB/s reads as M tokens/s
	b.ResetTimer()
	for b.Loop() {
		if err := Sort(text, sa, 1<<16); err != nil {
			b.Fatal(err)
		}
	}
}
