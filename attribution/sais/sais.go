// Package sais builds suffix arrays over integer alphabets with SA-IS (Nong, Zhang and Chan, "Two efficient
// algorithms for linear time suffix array construction", 2009).
//
// It owns one thing: given a text of small integers, compute the order of its suffixes. It never compares
// suffixes directly, so its running time is linear in the text length whatever the text looks like — one
// symbol repeated a hundred million times costs the same as random text. A comparison sort would go
// quadratic on exactly such a record, which is why the attribution index uses this package.
//
// The implementation follows Go's index/suffixarray (itself after Yuta Mori's sais-lite; Copyright 2019 The
// Go Authors, under the BSD licence in LICENSE.go-authors beside this file), made generic over the symbol type: suffix types are derived on the fly
// from neighbouring symbols instead of a type table, the LMS substrings are sorted by partial induction
// passes that keep only what the next pass needs, and they are named by comparing their lengths (with a
// hash of short ones), stored in the free half of the suffix array, before their symbols. Unlike Go's, it
// recurses only on the part of the reduced text that needs it (see sortReduced), which on token streams,
// where most LMS substrings are unique, is well under half of it.
//
// Contracts:
//   - Sort is deterministic: a suffix array is unique, so every machine gets the same bytes.
//   - Suffixes are compared as if the text were followed by a sentinel smaller than every symbol, so a proper
//     prefix sorts before the longer suffix it begins.
//   - Memory: besides the caller's text and suffix array, Sort holds two bucket tables of sigma entries at
//     the top level; the recursion keeps its reduced text, its suffix array and, nearly always, one of its
//     bucket tables inside the unused part of the caller's suffix array; one table shared by the levels
//     holds the rest. On a Zipf token stream that adds about 1 byte per token.
//
// Texts longer than MaxLen symbols are refused: positions are int32.
package sais

import (
	"errors"
	"fmt"
	"math"

	"github.com/shouldersnet/shoulders/attribution/internal/hugepage"
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
// Every symbol of text must be less than sigma, and len(sa) must equal len(text). sa's previous contents
// do not matter.
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
	// Count the symbols while checking them: the counts are the first half of the bucket tables.
	tmp := make([]int32, 2*sigma)
	freq := tmp[:sigma]
	for i, c := range text {
		// A negative int32 converts to a huge uint64, so one comparison covers both ends.
		if uint64(c) >= uint64(sigma) {
			return fmt.Errorf("%w: symbol %d at position %d is outside the alphabet [0, %d)", ErrInput, c, i, sigma)
		}
		freq[c]++
	}
	clear(sa)
	var spare []int32
	sais(text, sigma, sa, tmp, &spare, true)
	return nil
}

// sais computes the suffix array of text into sa, which must be zeroed. Every symbol is below sigma. tmp
// is scratch memory of at least sigma entries; with 2*sigma the symbol counts are kept in its first half,
// and counted already when counted is set. sais sets tmp[0] = -1 when it returns, so that a caller whose
// counts lived in tmp knows they are gone. *spare is a table shared by every level of the recursion for
// counts that do not fit in tmp, grown when too small.
func sais[T Symbol](text []T, sigma int, sa, tmp []int32, spare *[]int32, counted bool) {
	if len(sa) != len(text) || len(tmp) < sigma {
		panic("sais: misuse of sais")
	}
	switch len(text) {
	case 0:
		return
	case 1:
		sa[0] = 0
		return
	}

	// The counts are needed six times. Counting them again each time (Go's choice when they do not fit in
	// tmp) costs a pass of random increments over a table of sigma entries, which in the recursion is
	// about as large as the text: keeping them in a table of their own is much faster. That table is
	// shared with the deeper levels, so this level counts once more after the recursion: one allocation,
	// whose pages are touched once, instead of one per level.
	var freq, bucket []int32
	shared := false
	if len(tmp) >= 2*sigma {
		freq, bucket = tmp[:sigma], tmp[sigma:2*sigma]
	} else {
		if len(*spare) < sigma {
			*spare = make([]int32, sigma)
			hugepage.Advise(*spare) // it is read and written at random
		}
		freq, bucket, shared = (*spare)[:sigma], tmp[:sigma], true
	}
	if !counted {
		freq[0] = -1 // not counted yet
	}

	// Stage 1: sort the LMS substrings. Stage 2: name them, and sort the reduced text of names,
	// recursively when names repeat. Stage 3: induce the whole suffix array from the sorted LMS suffixes.
	numLMS := placeLMS(text, sa, freq, bucket)
	if numLMS > 1 {
		induceSubL(text, sa, freq, bucket)
		induceSubS(text, sa, freq, bucket)
		lengthLMS(text, sa, numLMS)
		maxID, unique := assignID(text, sa, numLMS)
		if maxID < numLMS {
			mapNames(sa, numLMS)
			sortReduced(sa, tmp, spare, numLMS, maxID, unique)
			if shared {
				freq[0] = -1 // the recursion used the shared table
			}
			unmap(text, sa, numLMS)
		} else {
			// The names are all distinct: the LMS substrings sorted are the LMS suffixes sorted.
			copy(sa, sa[len(sa)-numLMS:])
		}
		expand(text, freq, bucket, sa, numLMS)
	}
	induceL(text, sa, freq, bucket)
	induceS(text, sa, freq, bucket)

	tmp[0] = -1
}

// counts returns the number of each symbol, counting them into freq unless freq[0] >= 0 says it holds
// them already.
func counts[T Symbol](text []T, freq []int32) []int32 {
	if freq[0] >= 0 {
		return freq
	}
	clear(freq)
	for _, c := range text {
		freq[c]++
	}
	return freq
}

// bucketMin sets bucket[c] to the first slot of c's bucket.
func bucketMin[T Symbol](text []T, freq, bucket []int32) {
	freq = counts(text, freq)
	bucket = bucket[:len(freq)]
	total := int32(0)
	for i, n := range freq {
		bucket[i] = total
		total += n
	}
}

// bucketMax sets bucket[c] to one past the last slot of c's bucket.
func bucketMax[T Symbol](text []T, freq, bucket []int32) {
	freq = counts(text, freq)
	bucket = bucket[:len(freq)]
	total := int32(0)
	for i, n := range freq {
		total += n
		bucket[i] = total
	}
}

// placeLMS places the LMS-substring start positions at the ends of their buckets, in text order, and
// returns how many there are. When there are two or more it leaves out the leftmost: it ends no LMS
// substring, and the induction of stage 1 works on substring ends. (Start positions double as the end
// positions of the substrings before them; the rightmost substring ends at the sentinel.)
//
// Every scan over the text below walks it backwards keeping c0 = text[i], c1 = text[i+1] and the type of
// i+1: S when text[i+1] < text[i+2] or they are equal and i+2 is S. Position len(text) is the sentinel,
// S-type, but has nowhere to be written, so the scans start with isTypeS false.
func placeLMS[T Symbol](text []T, sa, freq, bucket []int32) int {
	bucketMax(text, freq, bucket)

	// No branch on the symbols (see unmap): at a position that does not start an LMS substring the loop
	// stores the bucket pointer unchanged and writes back the value it just read from sa[i], which changes
	// nothing, whether that slot is empty or holds an entry placed before.
	numLMS := 0
	lastB := int32(-1)
	var c0, c1 T
	isTypeS := 0
	for i := len(text) - 1; i >= 0; i-- {
		c0, c1 = text[i], c0
		lt, gt := b2i(c0 < c1), b2i(c0 > c1)
		lms := gt & isTypeS // i+1 starts an LMS substring
		isTypeS = lt | isTypeS&^gt
		b := bucket[c1] - int32(lms)
		bucket[c1] = b
		dst, v := int32(i), sa[i]
		if lms != 0 {
			dst = b
		}
		if lms != 0 {
			v = int32(i + 1)
		}
		if lms != 0 {
			lastB = b
		}
		sa[dst] = v
		numLMS += lms
	}
	if numLMS > 1 {
		sa[lastB] = 0
	}
	return numLMS
}

// placeLast starts a left-to-right induction: the implicit entry sa[-1] = len(text) (the sentinel) places
// len(text)-1, which is L-type, at the head of its bucket (negated when its predecessor is S-type).
func placeLast[T Symbol](text []T, sa, bucket []int32) {
	k := len(text) - 1
	c0, c1 := text[k-1], text[k]
	if c0 < c1 {
		k = -k
	}
	b := bucket[c1]
	bucket[c1] = b + 1
	sa[b] = int32(k)
}

// induceSubL is the left-to-right induction of stage 1. Each entry j > 0 it reads is sorted and has an
// L-type j-1, which it places at the head of j-1's bucket: as k-1 when k-2 is L-type too (work for this
// scan, which clears the entry once done), as -(j-1) when k-2 is S-type (left for induceSubS, and made
// positive). It ends with only the leftmost L-type position of each LMS substring in sa.
//
// Go's index/suffixarray keeps the last bucket's pointer in a register, as bytes often repeat. Token
// streams rarely put the same symbol before two neighbouring suffixes, so here that cache only costs
// mispredicted branches: the four induction passes update the bucket table directly, about a fifth faster
// on a Zipf token stream.
func induceSubL[T Symbol](text []T, sa, freq, bucket []int32) {
	bucketMin(text, freq, bucket)
	placeLast(text, sa, bucket)

	for i := 0; i < len(sa); i++ {
		j := int(sa[i])
		if j == 0 {
			continue
		}
		if j < 0 {
			sa[i] = int32(-j) // left for induceSubS
			continue
		}
		sa[i] = 0

		k := j - 1
		c0, c1 := text[k-1], text[k]
		if c0 < c1 {
			k = -k
		}
		b := bucket[c1]
		bucket[c1] = b + 1
		sa[b] = int32(k)
	}
}

// induceSubS is the right-to-left induction of stage 1, the mirror of induceSubL: it places S-type
// positions at the tails of their buckets and ends with the LMS-substring starts, sorted by substring,
// compacted into the top of sa and nothing else.
func induceSubS[T Symbol](text []T, sa, freq, bucket []int32) {
	bucketMax(text, freq, bucket)

	top := len(sa)
	for i := len(sa) - 1; i >= 0; i-- {
		j := int(sa[i])
		if j == 0 {
			continue
		}
		sa[i] = 0
		if j < 0 {
			top--
			sa[top] = int32(-j) // an LMS-substring start, for the caller
			continue
		}

		k := j - 1
		c1 := text[k]
		c0 := text[k-1]
		if c0 > c1 {
			k = -k
		}
		b := bucket[c1] - 1
		bucket[c1] = b
		sa[b] = int32(k)
	}
}

// lengthLMS stores a code for the LMS substring at j (up to and including the next LMS position) at
// sa[j/2], below the sorted starts in the top half of sa (j-1 is L-type, so no two starts share a slot).
// Equal substrings get equal codes, so assignID compares the symbols of two substrings only when their
// codes are equal: the code is the length, and for substrings shorter than 128 symbols (nearly all) also
// 24 bits of a hash of the symbols, which tells most unequal neighbours apart without reading the text
// at random. A hashed code is negative; the rightmost substring, the only one that runs into the
// sentinel, gets 0, so that it differs from every other without comparing symbols past the end.
func lengthLMS[T Symbol](text []T, sa []int32, numLMS int) {
	end := 0 // the start of the LMS substring after this one, plus one; 0 before the first is found
	var h uint32
	var c0, c1 T
	isTypeS := 0
	// No branch on the symbols (see unmap): every position writes its slot, with its old value unless it is
	// an LMS position. The slot of a position that is not one may be an LMS position's, which keeps its code.
	for i := len(text) - 1; i >= 0; i-- {
		c0, c1 = text[i], c0
		h = h*0x9E3779B1 + uint32(c1) + 1 // the symbols from text[i+1] to the end of the substring
		lt, gt := b2i(c0 < c1), b2i(c0 > c1)
		lms := gt & isTypeS
		isTypeS = lt | isTypeS&^gt
		j := i + 1
		code := int32(end - j)
		if code < shortLMS {
			code = math.MinInt32 | int32(h>>8)<<7 | code
		}
		if end == 0 {
			code = 0
		}
		v := sa[j>>1]
		if lms != 0 {
			v = code
		}
		sa[j>>1] = v
		if lms != 0 {
			end = j + 1
		}
		if lms != 0 {
			h = uint32(c1) + 1 // text[j] ends the substring before this one
		}
	}
}

// shortLMS bounds the lengths that lengthLMS codes with a hash.
const shortLMS = 1 << 7

// codeLen returns the length coded by a lengthLMS code.
func codeLen(code int32) int {
	if code < 0 {
		return int(code & (shortLMS - 1))
	}
	return int(code)
}

// assignID names the LMS substrings, sorted in sa[len(sa)-numLMS:]: equal substrings get equal names, in
// order, and the name of a group of equal substrings is one plus the index of its first member in the
// sorted list, so that sortCompacted can place a suffix by its name. It writes the name of the substring at
// j over its code at sa[j/2], negated when no other substring has it. Two substrings are equal when their
// lengths and symbols are: the types follow from the symbols and the final S type. It returns the number of
// distinct names and the number of unique ones.
func assignID[T Symbol](text []T, sa []int32, numLMS int) (names, unique int) {
	id := int32(0)
	size := 0 // of the current name's group
	var lastCode, lastPos int32
	for i, j := range sa[len(sa)-numLMS:] {
		code := sa[j/2]
		if i == 0 || code != lastCode || !equalRun(text, int(j), int(lastPos), codeLen(code)) {
			if size == 1 {
				sa[lastPos/2] = -sa[lastPos/2]
				unique++
			}
			names++
			id = int32(i + 1)
			size = 0
			lastPos = j
			lastCode = code
		}
		sa[j/2] = id
		size++
	}
	if size == 1 {
		sa[lastPos/2] = -sa[lastPos/2]
		unique++
	}
	return names, unique
}

// equalRun reports whether the n symbols at p equal the n symbols at q.
func equalRun[T Symbol](text []T, p, q, n int) bool {
	a := text[p:][:n]
	b := text[q:][:n]
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mapNames gathers the names, in text order, into the top numLMS entries of sa, less one: that is the
// reduced text, over the alphabet [0, numLMS).
//
// A unique name x (negative from assignID) is written as ^x, so that it stays negative.
//
// Which slots hold names follows no pattern, so the loop has no branch on it: every slot is written to the
// next free entry at the top, which moves on only after a name. That entry is at or above
// len(sa)-numLMS-1, above every slot still to read (numLMS <= (len(sa)-1)/2), and the last such write
// lands below the reduced text, in space that is free.
func mapNames(sa []int32, numLMS int) {
	w := len(sa)
	for i := len(sa) / 2; i >= 0; i-- {
		j := sa[i]
		sa[w-1] = j - int32(b2i(j > 0)) // j-1 for a shared name, j = ^(-j-1) for a unique one
		w -= b2i(j != 0)
	}
}

// sortReduced sorts the suffixes of the reduced text R in sa[len(sa)-numLMS:] into sa[:numLMS] (as
// indexes into R), where R[r] < 0 marks a name ^R[r] that occurs only there.
//
// A suffix that begins with a unique name is placed by its name alone, and no comparison of two suffixes
// ever reads past a unique name (the other suffix would need the same name at the same offset, so they
// would be one suffix). So a position whose name and whose predecessor's name are both unique is never
// read by any comparison that matters: when there are many such positions (on token streams most names
// are unique) they are left out, the rest is renamed densely and sorted recursively, and the result is
// merged with the unique suffixes by name: the suffixes that share a name are the only ones whose order
// the recursion decides. The recursion then sorts well under half as many suffixes. Otherwise R is sorted
// as it is.
func sortReduced(sa, oldTmp []int32, spare *[]int32, numLMS, maxID, unique int) {
	n := len(sa)
	R := sa[n-numLMS:]
	if unique >= numLMS/4 {
		// kept(r): R[r] is shared, or R[r-1] is.
		m := 0
		shared := false
		for _, v := range R {
			if v >= 0 || shared {
				m++
			}
			shared = v >= 0
		}
		// Room: the recursion's text and result below m*2, then the recursion's result as R indexes
		// below R, clear of the final result sa[:numLMS].
		if m < numLMS && m <= n-2*numLMS && 3*m <= n-numLMS {
			sortCompacted(sa, oldTmp, spare, numLMS, m)
			return
		}
	}
	// Rename densely, 0 to maxID-1, so that the recursion's bucket tables are as small as they can be; the
	// table of new names fits in sa[:numLMS], the recursion's result, not yet written.
	dense := sa[:numLMS]
	clear(dense)
	for _, v := range R {
		dense[v^(v>>31)] = 1
	}
	id := int32(0)
	for x, k := range dense {
		if k != 0 {
			dense[x] = id
			id++
		}
	}
	for i, v := range R {
		R[i] = dense[v^(v>>31)]
	}
	recurse(sa, oldTmp, spare, numLMS, maxID)
}

// sortCompacted is sortReduced with the m kept positions sorted recursively.
func sortCompacted(sa, oldTmp []int32, spare *[]int32, numLMS, m int) {
	n := len(sa)
	R := sa[n-numLMS:]
	name := func(v int32) int32 { return v ^ (v >> 31) } // v or ^v

	// Dense names for the kept names, in order, through a table over the alphabet [0, numLMS): in the
	// free part of sa when it fits beside the recursion's text, else in the shared table.
	var rank []int32
	if 2*m+numLMS <= n-numLMS {
		rank = sa[2*m : 2*m+numLMS]
	} else {
		if len(*spare) < numLMS {
			*spare = make([]int32, numLMS)
			hugepage.Advise(*spare)
		}
		rank = (*spare)[:numLMS]
	}
	clear(rank)
	shared := false
	for _, v := range R {
		if v >= 0 || shared {
			rank[name(v)] = 1
		}
		shared = v >= 0
	}
	names := int32(0)
	for x, k := range rank {
		if k != 0 {
			rank[x] = names
			names++
		}
	}
	dst, text := sa[:m], sa[m:2*m]
	w := 0
	shared = false
	for _, v := range R {
		if v >= 0 || shared {
			text[w] = rank[name(v)]
			w++
		}
		shared = v >= 0
	}

	// Some name is shared (there are fewer names than LMS substrings) and kept twice, so names < m: there
	// is something to sort.
	tmp := oldTmp
	if saTmp := sa[2*m : n-numLMS]; len(tmp) < len(saTmp) {
		tmp = saTmp
	}
	if len(tmp) < m {
		tmp = make([]int32, max(int(names), m/2))
	}
	clear(dst)
	sais(text, int(names), dst, tmp, spare, false)

	// The kept suffixes in order, as indexes into R.
	kept := sa[m : 2*m]
	w = 0
	shared = false
	for r, v := range R {
		if v >= 0 || shared {
			kept[w] = int32(r)
			w++
		}
		shared = v >= 0
	}
	sorted := sa[n-numLMS-m : n-numLMS]
	for i, x := range dst {
		sorted[i] = kept[x]
	}

	// Merge by name. A name is the index of the first suffix that begins with it in the result: a unique
	// suffix goes there; the suffixes of a shared name come in sorted, one name after another in order,
	// and fill its slots from there.
	out := sa[:numLMS]
	for r, v := range R {
		if v < 0 {
			out[^v] = int32(r)
		}
	}
	cur, slot := int32(-1), int32(0)
	for _, r := range sorted {
		v := R[r]
		if v < 0 {
			continue
		}
		if v != cur {
			cur, slot = v, v
		}
		out[slot] = r
		slot++
	}
}

// recurse sorts the reduced text in sa[len(sa)-numLMS:] into sa[:numLMS]. The reduced text is at most half
// the length of the text (LMS positions are at least two apart) and nearly always under a third, so the
// middle of sa is free for the recursion's bucket tables; otherwise it uses the caller's tmp, or allocates
// one table that is large enough for every deeper level too.
func recurse(sa, oldTmp []int32, spare *[]int32, numLMS, maxID int) {
	dst, saTmp, text := sa[:numLMS], sa[numLMS:len(sa)-numLMS], sa[len(sa)-numLMS:]
	tmp := oldTmp
	if len(tmp) < len(saTmp) {
		tmp = saTmp
	}
	if len(tmp) < numLMS {
		tmp = make([]int32, max(maxID, numLMS/2))
	}
	clear(dst)
	sais(text, maxID, dst, tmp, spare, false)
}

// unmap turns the sorted reduced suffixes in sa[:numLMS] (indexes into the reduced text) into the LMS
// positions they stand for.
//
// Its scan has no branch on the symbols, which follow no pattern a predictor can learn: every position
// is written to the next free slot of pos, which moves on only after an LMS position. It stops once the
// leftmost is written, so the slot is always in range.
func unmap[T Symbol](text []T, sa []int32, numLMS int) {
	pos := sa[len(sa)-numLMS:]
	j := len(pos)
	var c0, c1 T
	isTypeS := 0
	for i := len(text) - 1; i >= 0 && j > 0; i-- {
		c0, c1 = text[i], c0
		lt, gt := b2i(c0 < c1), b2i(c0 > c1)
		lms := gt & isTypeS
		isTypeS = lt | isTypeS&^gt
		pos[j-1] = int32(i + 1)
		j -= lms
	}
	sa = sa[:numLMS]
	for i := range sa {
		sa[i] = pos[sa[i]]
	}
}

// b2i is 1 for true and 0 for false; the compiler makes it a flag move, not a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// expand moves the sorted LMS positions from sa[:numLMS] to the ends of their buckets, keeping their order,
// and zeroes every other entry. It works from the largest down: the x-th smallest goes to a slot at or
// above x (the x smaller ones take distinct slots below it), so it never overwrites one still to move.
func expand[T Symbol](text []T, freq, bucket, sa []int32, numLMS int) {
	bucketMax(text, freq, bucket)

	clear(sa[numLMS:])
	for x := numLMS - 1; x >= 0; x-- {
		p := sa[x]
		sa[x] = 0
		c := text[p]
		b := bucket[c] - 1
		bucket[c] = b
		sa[b] = p
	}
}

// induceL is the left-to-right induction of stage 3: from the sorted LMS positions it places every L-type
// position. A position k is stored as -k when k-1 is S-type, for induceS to work on; entries that need no
// more work are non-negative. Position 0 has no predecessor and is stored as 0, which both scans skip.
func induceL[T Symbol](text []T, sa, freq, bucket []int32) {
	bucketMin(text, freq, bucket)
	placeLast(text, sa, bucket)

	for i := 0; i < len(sa); i++ {
		j := int(sa[i])
		if j <= 0 {
			continue
		}
		k := j - 1
		c1 := text[k]
		if k > 0 {
			if c0 := text[k-1]; c0 < c1 {
				k = -k
			}
		}
		b := bucket[c1]
		bucket[c1] = b + 1
		sa[b] = int32(k)
	}
}

// induceS is the right-to-left induction of stage 3: it places every S-type position at the tail of its
// bucket (overwriting the LMS entries expand put there) and makes every entry non-negative.
func induceS[T Symbol](text []T, sa, freq, bucket []int32) {
	bucketMax(text, freq, bucket)

	for i := len(sa) - 1; i >= 0; i-- {
		j := int(sa[i])
		if j >= 0 {
			continue
		}
		j = -j
		sa[i] = int32(j)

		k := j - 1
		c1 := text[k]
		if k > 0 {
			if c0 := text[k-1]; c0 <= c1 {
				k = -k
			}
		}
		b := bucket[c1] - 1
		bucket[c1] = b
		sa[b] = int32(k)
	}
}
