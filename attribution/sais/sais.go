// Package sais builds suffix arrays over integer alphabets with SA-IS (Nong, Zhang and Chan, "Two efficient
// algorithms for linear time suffix array construction", 2009).
//
// It owns one thing: given a text of small integers, compute the order of its suffixes. It never compares
// suffixes directly, so its running time is linear in the text length whatever the text looks like — one
// symbol repeated a hundred million times costs the same as random text. A comparison sort would go
// quadratic on exactly such a record, which is why the attribution index uses this package.
//
// Contracts:
//   - Sort is deterministic: a suffix array is unique, so every machine gets the same bytes.
//   - Suffixes are compared as if the text were followed by a sentinel smaller than every symbol, so a proper
//     prefix sorts before the longer suffix it begins.
//   - Memory: besides the caller's text and suffix array, Sort holds one bit per symbol for suffix types at
//     each recursion level and two bucket tables of sigma entries at the top level; the recursion keeps its
//     reduced text, and its bucket tables when they fit, inside the unused part of the caller's suffix
//     array. On a Zipf token stream that adds about 1 byte per token at the first recursion level.
//
// Texts longer than MaxLen symbols are refused: positions are int32.
package sais

import (
	"errors"
	"fmt"
	"math"
)

// MaxLen is the longest text Sort accepts: suffix array entries are int32.
const MaxLen = math.MaxInt32 - 1

// Symbol is the type of a text element. The top level of the attribution index sorts uint16 or uint32
// token streams; the recursion sorts int32 names.
type Symbol interface {
	~uint8 | ~uint16 | ~uint32 | ~int32
}

// ErrInput reports a text that Sort cannot handle.
var ErrInput = errors.New("sais: bad input")

// Sort fills sa with the suffix array of text: sa[i] is the starting position of the i-th smallest suffix.
// Every symbol of text must be less than sigma, and len(sa) must equal len(text).
func Sort[T Symbol](text []T, sa []int32, sigma int) error {
	n := len(text)
	if len(sa) != n {
		return fmt.Errorf("%w: suffix array has %d entries for a text of %d symbols", ErrInput, len(sa), n)
	}
	if n > MaxLen {
		return fmt.Errorf("%w: text of %d symbols is longer than the limit of %d", ErrInput, n, MaxLen)
	}
	if sigma <= 0 || sigma > math.MaxInt32 {
		return fmt.Errorf("%w: alphabet size %d must be in [1, %d]", ErrInput, sigma, math.MaxInt32)
	}
	for i, c := range text {
		if int64(c) >= int64(sigma) || int64(c) < 0 {
			return fmt.Errorf("%w: symbol %d at position %d is outside the alphabet [0, %d)", ErrInput, c, i, sigma)
		}
	}
	sort(text, sa, sigma, nil)
	return nil
}

// sort is SA-IS proper. scratch is memory the caller does not need during the call (possibly nil); bucket
// tables go there when they fit.
func sort[T Symbol](text []T, sa []int32, sigma int, scratch []int32) {
	n := len(text)
	switch n {
	case 0:
		return
	case 1:
		sa[0] = 0
		return
	}

	// Bucket tables: cnt holds the number of each symbol, bkt the moving heads or tails.
	var cnt, bkt []int32
	switch {
	case len(scratch) >= 2*sigma:
		cnt, bkt = scratch[:sigma], scratch[sigma:2*sigma]
	case len(scratch) >= sigma:
		cnt, bkt = make([]int32, sigma), scratch[:sigma]
	default:
		cnt, bkt = make([]int32, sigma), make([]int32, sigma)
	}
	clear(cnt)
	for _, c := range text {
		cnt[c]++
	}

	t := classify(text)

	// Stage 1: sort the LMS substrings by placing LMS positions at the ends of their buckets and inducing.
	for i := range sa {
		sa[i] = -1
	}
	bucketEnds(cnt, bkt)
	for i := n - 2; i >= 1; i-- {
		if t.isLMS(i) {
			c := text[i]
			bkt[c]--
			sa[bkt[c]] = int32(i)
		}
	}
	induce(text, sa, cnt, bkt)

	// Compact the sorted LMS positions into sa[:n1].
	n1 := 0
	for i := 0; i < n; i++ {
		p := sa[i]
		if p > 0 && t.isLMS(int(p)) {
			sa[n1] = p
			n1++
		}
	}
	if n1 == 0 {
		// No LMS position: the text is non-increasing, and stage 1 already sorted it completely.
		return
	}

	// Name the LMS substrings: equal substrings get equal names, in sorted order. A name is stored at
	// sa[n1+p/2] (LMS positions are at least two apart, so p/2 is unique and the slot is free).
	for i := n1; i < n; i++ {
		sa[i] = -1
	}
	names := 0
	prev := -1
	for i := 0; i < n1; i++ {
		p := int(sa[i])
		if prev < 0 || !equalLMS(text, t, prev, p) {
			names++
		}
		prev = p
		sa[n1+p/2] = int32(names - 1)
	}
	// Gather the names, in text order, at the end of sa: that is the reduced text.
	j := n - 1
	for i := n - 1; i >= n1; i-- {
		if sa[i] >= 0 {
			sa[j] = sa[i]
			j--
		}
	}
	reduced := sa[n-n1:]
	sa1 := sa[:n1]

	// Stage 2: sort the reduced text, recursively when names repeat.
	if names < n1 {
		sort(reduced, sa1, names, sa[n1:n-n1])
	} else {
		for i, c := range reduced {
			sa1[c] = int32(i)
		}
	}

	// Stage 3: map the sorted reduced suffixes back to LMS positions, place them at their bucket ends in
	// order, and induce the whole suffix array from them.
	j = 0
	for i := 1; i < n-1; i++ {
		if t.isLMS(i) {
			reduced[j] = int32(i)
			j++
		}
	}
	for i := range sa1 {
		sa1[i] = reduced[sa1[i]]
	}
	for i := n1; i < n; i++ {
		sa[i] = -1
	}
	bucketEnds(cnt, bkt)
	for i := n1 - 1; i >= 0; i-- {
		p := sa[i]
		sa[i] = -1
		c := text[p]
		bkt[c]--
		sa[bkt[c]] = p
	}
	induce(text, sa, cnt, bkt)
}

// induce sorts the L-type suffixes from the LMS suffixes already in place at their bucket ends, then the
// S-type suffixes from the L-type ones. Empty slots hold -1.
//
// It never consults the type bits: an entry carries the type of its predecessor in its sign. An entry p >= 0
// means "the suffix before p is L-type" (the left-to-right scan must place p-1); an entry ^p < 0 means "the
// suffix before p is S-type, or p is 0" (the right-to-left scan must place p-1, and restores the entry to p).
// When a scan places k, the type of k-1 follows from comparing text[k-1] with text[k], which sit next to
// each other in memory, instead of from a bit table that costs a cache miss. Every slot the right-to-left
// scan reads was written before it reads it (an S-type suffix is induced from the larger suffix after it),
// so -1 there can only mean ^0.
func induce[T Symbol](text []T, sa []int32, cnt, bkt []int32) {
	n := len(text)
	// Left to right, placing L-type suffixes at their bucket heads. The last suffix is L-type (it is followed
	// by the sentinel) and comes first among the L-type suffixes of its bucket.
	bucketHeads(cnt, bkt)
	k := n - 1
	c := text[k]
	b := bkt[c]
	if k > 0 && text[k-1] < c {
		sa[b] = int32(^k)
	} else {
		sa[b] = int32(k)
	}
	bkt[c] = b + 1
	for i := 0; i < n; i++ {
		j := int(sa[i])
		if j <= 0 {
			continue
		}
		k := j - 1
		c := text[k]
		b := bkt[c]
		if k == 0 || text[k-1] < c {
			sa[b] = int32(^k)
		} else {
			sa[b] = int32(k)
		}
		bkt[c] = b + 1
	}
	// Right to left, placing S-type suffixes at their bucket tails; they overwrite the LMS entries.
	bucketEnds(cnt, bkt)
	for i := n - 1; i >= 0; i-- {
		j := int(sa[i])
		if j >= 0 {
			continue
		}
		j = ^j
		sa[i] = int32(j)
		if j == 0 {
			continue
		}
		k := j - 1
		c := text[k]
		b := bkt[c] - 1
		if k == 0 || text[k-1] <= c {
			sa[b] = int32(^k)
		} else {
			sa[b] = int32(k)
		}
		bkt[c] = b
	}
}

// equalLMS reports whether the LMS substrings at p and q (both LMS positions) are equal: the same symbols
// and the same types up to and including the next LMS position.
func equalLMS[T Symbol](text []T, t types, p, q int) bool {
	n := len(text)
	for k := 0; ; k++ {
		a, b := p+k, q+k
		if a == n || b == n {
			return false // one of them runs into the sentinel, which is unique
		}
		if text[a] != text[b] || t.isS(a) != t.isS(b) {
			return false
		}
		if k > 0 && t.isLMS(a) {
			// Types agreed at a-1 and b-1 and at a and b, so b is an LMS position too.
			return true
		}
	}
}

func bucketHeads(cnt, bkt []int32) {
	var sum int32
	for c, k := range cnt {
		bkt[c] = sum
		sum += k
	}
}

func bucketEnds(cnt, bkt []int32) {
	var sum int32
	for c, k := range cnt {
		sum += k
		bkt[c] = sum
	}
}

// types holds one bit per position: set when the suffix there is S-type (smaller than the suffix after it).
type types []uint64

func classify[T Symbol](text []T) types {
	n := len(text)
	t := make(types, (n+63)/64)
	// The last suffix is L-type: it is larger than the empty suffix (the sentinel).
	s := false
	for i := n - 2; i >= 0; i-- {
		if text[i] < text[i+1] || (text[i] == text[i+1] && s) {
			s = true
			t[i>>6] |= 1 << (uint(i) & 63)
		} else {
			s = false
		}
	}
	return t
}

func (t types) isS(i int) bool { return t[i>>6]>>(uint(i)&63)&1 != 0 }

// isLMS reports whether i is a leftmost S-type position: S-type with an L-type position before it.
func (t types) isLMS(i int) bool { return i > 0 && t.isS(i) && !t.isS(i-1) }
