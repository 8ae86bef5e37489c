package sais

import "fmt"

// CheckSorted verifies in linear time that sa is the suffix array of text (Burkhardt and Kärkkäinen's
// check): sa is a permutation of the positions, and for each adjacent pair (p, q) either text[p] < text[q],
// or the symbols are equal and the suffix after p ranks before the suffix after q. It allocates one int32
// per position. Tests and the invariants build use it; it is too slow for the hot path of a build.
func CheckSorted[T Symbol](text []T, sa []int32) error {
	n := len(text)
	if len(sa) != n {
		return fmt.Errorf("sais: suffix array has %d entries for %d symbols", len(sa), n)
	}
	// rank[p] = index of suffix p in sa; rank[n] stands for the empty suffix and ranks first.
	rank := make([]int32, n+1)
	for i := range rank {
		rank[i] = -2
	}
	rank[n] = -1
	for i, p := range sa {
		if p < 0 || int(p) >= n {
			return fmt.Errorf("sais: entry %d is %d, outside [0, %d)", i, p, n)
		}
		if rank[p] != -2 {
			return fmt.Errorf("sais: position %d appears twice (entries %d and %d)", p, rank[p], i)
		}
		rank[p] = int32(i)
	}
	for i := 0; i+1 < n; i++ {
		p, q := sa[i], sa[i+1]
		if text[p] > text[q] || (text[p] == text[q] && rank[p+1] > rank[q+1]) {
			return fmt.Errorf("sais: suffixes at entries %d and %d (positions %d and %d) are out of order", i, i+1, p, q)
		}
	}
	return nil
}
