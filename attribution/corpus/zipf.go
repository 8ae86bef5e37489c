package corpus

import (
	"fmt"
	"slices"

	"github.com/shouldersnet/shoulders/attribution/index"
	"github.com/shouldersnet/shoulders/attribution/internal/splitmix"
)

// Zipf returns a synthetic corpus of about tokens tokens: records of words drawn from a vocabulary of
// vocab made-up words with Zipf frequencies (the k-th most frequent has weight proportional to 1/k), a
// full stop after about one word in twelve, records of 50 to 2,000 words, contributors "zipf-00" to
// "zipf-99" in turn. It uses integers only and SplitMix64, so the same arguments give the same bytes
// everywhere. Each word with its leading space is one token for a tokenizer learned on the corpus.
func Zipf(seed uint64, tokens, vocab int) []index.Record {
	rng := splitmix.New(seed)
	words := make([][]byte, vocab)
	cdf := make([]uint64, vocab) // cumulative weights 2^40/k
	var sum uint64
	for k := range words {
		w := []byte{' '}
		for range 2 + rng.Below(8) {
			w = append(w, byte('a'+rng.Below(26)))
		}
		words[k] = w
		sum += (1 << 40) / uint64(k+1)
		cdf[k] = sum
	}
	var out []index.Record
	total := 0
	for i := 0; total < tokens; i++ {
		n := min(50+int(rng.Below(1951)), tokens-total)
		text := make([]byte, 0, n*7)
		for count := 0; count < n; {
			k, _ := slices.BinarySearch(cdf, rng.Below(sum)+1)
			w := words[k]
			if count == 0 {
				w = w[1:]
			}
			text = append(text, w...)
			count++
			if count < n && rng.Below(12) == 0 {
				text = append(text, '.')
				count++
			}
		}
		total += n
		out = append(out, index.Record{ID: fmt.Sprintf("zipf-%07d", i), Contributor: fmt.Sprintf("zipf-%02d", i%100), Text: text})
	}
	return out
}
