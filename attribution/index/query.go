package index

import (
	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// Index is a suffix-array index over a corpus, built in memory by Build or mapped from a directory by Open.
// It is read-only and safe for concurrent use.
type Index struct {
	man     Manifest
	dir     string // where it was opened from; "" when built in memory
	tok     *tokenize.Tokenizer
	n       int      // stream length
	t16     []uint16 // the stream when IDs fit in 16 bits
	t32     []uint32 // otherwise
	sa      packed
	unigram []uint32
	rec     records
	parts   [numParts][]byte // a built index's file contents, for WriteDir
	maps    [][]byte         // an opened index's mappings, for Close
}

// Manifest describes the index: sizes, hashes, the index hash.
func (ix *Index) Manifest() Manifest { return ix.man }

// Hash is the index hash: two indexes with the same hash have the same bytes.
func (ix *Index) Hash() string { return ix.man.IndexHash }

// Tokenizer is the tokenizer the corpus was encoded with; queries take its IDs.
func (ix *Index) Tokenizer() *tokenize.Tokenizer { return ix.tok }

// Len is the length of the stream: text tokens plus one separator per record.
func (ix *Index) Len() int { return ix.n }

// TextTokens is the number of text tokens (separators excluded).
func (ix *Index) TextTokens() int { return ix.n - len(ix.rec.starts) }

// Records is the number of records.
func (ix *Index) Records() int { return len(ix.rec.starts) }

// Contributors is the number of distinct contributors.
func (ix *Index) Contributors() int { return len(ix.rec.contributors) }

// Contributor returns the name of contributor c (0 <= c < Contributors()).
func (ix *Index) Contributor(c int) string { return ix.rec.contributors[c] }

// RecordInfo describes one record of the corpus.
type RecordInfo struct {
	ID          string
	Contributor int // index for Contributor
	Start       int // stream offset of its first token
	Tokens      int
}

// Record describes record i (0 <= i < Records()).
func (ix *Index) Record(i int) RecordInfo {
	end := ix.n - 1
	if i+1 < len(ix.rec.starts) {
		end = int(ix.rec.starts[i+1]) - 1
	}
	start := int(ix.rec.starts[i])
	return RecordInfo{ID: ix.rec.ids[i], Contributor: int(ix.rec.contrib[i]), Start: start, Tokens: end - start}
}

// Unigram is the number of times token t occurs in the stream.
func (ix *Index) Unigram(t uint32) int {
	if uint64(t)+1 >= uint64(len(ix.unigram)) {
		return 0
	}
	return int(ix.unigram[t+1] - ix.unigram[t])
}

// Stream returns the tokens of the stream from position from to to (exclusive), clamped to the stream.
func (ix *Index) Stream(dst []uint32, from, to int) []uint32 {
	from, to = max(from, 0), min(to, ix.n)
	for p := from; p < to; p++ {
		dst = append(dst, ix.token(p))
	}
	return dst
}

func (ix *Index) token(p int) uint32 {
	if ix.t16 != nil {
		return uint32(ix.t16[p])
	}
	return ix.t32[p]
}

// Range is a block of the suffix array: the Hi-Lo occurrences of one pattern of Len tokens, ordered by
// the text that follows them. An empty range (Lo == Hi) means the pattern does not occur.
type Range struct {
	Lo, Hi int
	Len    int
}

// Count is the number of occurrences.
func (r Range) Count() int { return r.Hi - r.Lo }

// Empty reports whether the pattern does not occur.
func (r Range) Empty() bool { return r.Hi <= r.Lo }

// All is the range of the empty pattern: every position of the stream.
func (ix *Index) All() Range { return Range{0, ix.n, 0} }

// Find returns the range of pattern. A pattern with the separator or an ID outside the vocabulary matches
// nothing.
func (ix *Index) Find(pattern []uint32) Range {
	if ix.t16 != nil {
		return find(ix, ix.t16, pattern)
	}
	return find(ix, ix.t32, pattern)
}

// Count is the number of occurrences of pattern.
func (ix *Index) Count(pattern []uint32) int { return ix.Find(pattern).Count() }

// Extend narrows r (the range of some pattern P) to the range of P followed by t.
func (ix *Index) Extend(r Range, t uint32) Range {
	if r.Len == 0 {
		if t == tokenize.Separator || uint64(t)+1 >= uint64(len(ix.unigram)) {
			return Range{0, 0, 1}
		}
		return Range{int(ix.unigram[t]), int(ix.unigram[t+1]), 1}
	}
	if ix.t16 != nil {
		return extend(ix.t16, ix.sa, r, t)
	}
	return extend(ix.t32, ix.sa, r, t)
}

// LongestSuffix returns the range of the longest suffix of ctx that occurs in the stream (All() when not
// even its last token does): lengths 1, 2, 4, … are tried until one does not occur, then a binary search
// between the last two. O(log |ctx|) searches of O(|suffix|·log N) token comparisons each.
func (ix *Index) LongestSuffix(ctx []uint32) Range {
	// No occurring suffix reaches past a separator.
	for i := len(ctx) - 1; i >= 0; i-- {
		if ctx[i] == tokenize.Separator {
			ctx = ctx[i+1:]
			break
		}
	}
	L := len(ctx)
	best := ix.All()
	lo, hi := 0, L+1 // suffix of length lo occurs; of length hi does not (L+1: never tried)
	for k := 1; k <= L; k = min(2*k, L) {
		r := ix.Find(ctx[L-k:])
		if r.Empty() {
			hi = k
			break
		}
		best, lo = r, k
		if k == L {
			break
		}
	}
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if r := ix.Find(ctx[L-mid:]); !r.Empty() {
			best, lo = r, mid
		} else {
			hi = mid
		}
	}
	return best
}

// Continuation is one token that follows a pattern, with the range of the pattern followed by it.
type Continuation struct {
	Token uint32
	Range Range // Len is the pattern's length plus one
}

// Count is the number of occurrences of the pattern followed by Token.
func (c Continuation) Count() int { return c.Range.Count() }

// MaxSupport bounds the maxSupport argument of Next and the max argument of Sample.
const MaxSupport = 1 << 16

// Next appends to dst the tokens that follow the occurrences in r, in ID order, with their exact ranges;
// the separator stands for "the record ends here". When r has more than maxSupport occurrences, only the
// continuations found at maxSupport stratified sample points are listed — each listed count is still exact,
// and every continuation with at least r.Count()/maxSupport occurrences is listed. maxSupport is clamped to
// [1, MaxSupport].
func (ix *Index) Next(r Range, maxSupport int, dst []Continuation) []Continuation {
	maxSupport = min(max(maxSupport, 1), MaxSupport)
	if ix.t16 != nil {
		return next(ix.t16, ix.sa, r, maxSupport, dst)
	}
	return next(ix.t32, ix.sa, r, maxSupport, dst)
}

// NextAt returns the token after the i-th occurrence in r (0 <= i < r.Count()).
func (ix *Index) NextAt(r Range, i int) uint32 {
	if ix.t16 != nil {
		return uint32(keyAt(ix.t16, ix.sa, r.Lo+i, r.Len))
	}
	return uint32(keyAt(ix.t32, ix.sa, r.Lo+i, r.Len))
}

// Occurrence is where one occurrence of a pattern lies.
type Occurrence struct {
	Pos    int // stream offset
	Record int // record index
	Offset int // token offset within the record
}

// Occurrence returns the i-th occurrence in r (0 <= i < r.Count()).
func (ix *Index) Occurrence(r Range, i int) Occurrence {
	pos := min(ix.sa.get(r.Lo+i), ix.n-1)
	rec, off := ix.rec.find(pos)
	return Occurrence{Pos: pos, Record: rec, Offset: off}
}

// Sample appends to dst the occurrences in r: all of them, in suffix-array order, when there are at most
// max; otherwise max of them, one from the middle of each of max equal strata of the range. The choice
// depends only on r and max. max is clamped to [1, MaxSupport].
func (ix *Index) Sample(r Range, max int, dst []Occurrence) []Occurrence {
	c := r.Count()
	m := clampSupport(max)
	if c <= m {
		for i := 0; i < c; i++ {
			dst = append(dst, ix.Occurrence(r, i))
		}
		return dst
	}
	for k := 0; k < m; k++ {
		dst = append(dst, ix.Occurrence(r, stratum(k, c, m)))
	}
	return dst
}

func clampSupport(m int) int { return min(max(m, 1), MaxSupport) }

// stratum is the middle of the k-th of m equal strata of c items.
func stratum(k, c, m int) int { return int((int64(2*k+1) * int64(c)) / int64(2*m)) }

// keyAt is the token at offset off of the suffix at sa entry i, or -1 when that runs off the stream (only
// a corrupted suffix array can make it).
func keyAt[T uint16 | uint32](tok []T, sa packed, i, off int) int64 {
	p := sa.get(i) + off
	if p >= len(tok) {
		return -1
	}
	return int64(tok[p])
}

// compare compares the suffix at stream position p with pat from offset off on, as a prefix: 0 when the
// suffix starts with pat. It also returns how many leading tokens of pat are known equal.
func compare[T uint16 | uint32](tok []T, p, off int, pat []uint32) (int, int) {
	n := len(tok)
	for i := off; i < len(pat); i++ {
		q := p + i
		if q >= n {
			return -1, i
		}
		a, b := uint32(tok[q]), pat[i]
		if a != b {
			if a < b {
				return -1, i
			}
			return 1, i
		}
	}
	return 0, len(pat)
}

func find[T uint16 | uint32](ix *Index, tok []T, pat []uint32) Range {
	if len(pat) == 0 {
		return ix.All()
	}
	for _, t := range pat {
		if t == tokenize.Separator {
			return Range{0, 0, len(pat)}
		}
	}
	t0 := pat[0]
	if uint64(t0)+1 >= uint64(len(ix.unigram)) {
		return Range{0, 0, len(pat)}
	}
	lo, hi := int(ix.unigram[t0]), int(ix.unigram[t0+1])
	if len(pat) == 1 || lo == hi {
		return Range{lo, hi, len(pat)}
	}
	// Lower bound: the first suffix >= pat. Every suffix in [lo, hi) starts with pat[0]; the known common
	// prefix with the suffixes on either side lets each comparison skip min(lcpL, lcpR) tokens.
	L, R := lo, hi
	lcpL, lcpR := 1, 1
	for L < R {
		mid := int(uint(L+R) >> 1)
		c, eq := compare(tok, ix.sa.get(mid), min(lcpL, lcpR), pat)
		if c < 0 {
			L, lcpL = mid+1, eq
		} else {
			R, lcpR = mid, eq
		}
	}
	first := L
	if first == hi {
		return Range{first, first, len(pat)}
	}
	if c, _ := compare(tok, ix.sa.get(first), 1, pat); c != 0 {
		return Range{first, first, len(pat)}
	}
	// Upper bound: the first suffix > pat, after first.
	L, R = first+1, hi
	lcpL, lcpR = len(pat), 1
	for L < R {
		mid := int(uint(L+R) >> 1)
		c, eq := compare(tok, ix.sa.get(mid), min(lcpL, lcpR), pat)
		if c <= 0 {
			L, lcpL = mid+1, eq
		} else {
			R, lcpR = mid, eq
		}
	}
	return Range{first, L, len(pat)}
}

// extend narrows r to the suffixes whose token at offset r.Len is t.
func extend[T uint16 | uint32](tok []T, sa packed, r Range, t uint32) Range {
	key := int64(t)
	lo := lowerBound(tok, sa, r.Lo, r.Hi, r.Len, key)
	hi := lowerBound(tok, sa, lo, r.Hi, r.Len, key+1)
	return Range{lo, hi, r.Len + 1}
}

// lowerBound returns the first entry in [lo, hi) whose token at offset off is >= key (hi if none). The
// entries must be sorted by that token, as they are within the range of a pattern of length off.
func lowerBound[T uint16 | uint32](tok []T, sa packed, lo, hi, off int, key int64) int {
	for hi-lo > 8 {
		mid := int(uint(lo+hi) >> 1)
		if keyAt(tok, sa, mid, off) < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for lo < hi && keyAt(tok, sa, lo, off) < key {
		lo++
	}
	return lo
}

func next[T uint16 | uint32](tok []T, sa packed, r Range, maxSupport int, dst []Continuation) []Continuation {
	c := r.Count()
	if c <= 0 {
		return dst
	}
	block := func(t int64, lo, hi int) Continuation {
		if t < 0 {
			t = int64(tokenize.Separator) // only a corrupted suffix array runs off the stream
		}
		return Continuation{Token: uint32(t), Range: Range{lo, hi, r.Len + 1}}
	}
	if c <= maxSupport {
		// Read every next token; equal tokens are adjacent.
		start, cur := r.Lo, keyAt(tok, sa, r.Lo, r.Len)
		for i := r.Lo + 1; i < r.Hi; i++ {
			if k := keyAt(tok, sa, i, r.Len); k != cur {
				dst = append(dst, block(cur, start, i))
				start, cur = i, k
			}
		}
		return append(dst, block(cur, start, r.Hi))
	}
	// Stratified sample points; each run of equal tokens among them is one continuation, whose exact
	// bounds lie between its first sample and the sample before it, and its last sample and the one after.
	prevPoint := r.Lo - 1
	k := 0
	for k < maxSupport {
		point := r.Lo + stratum(k, c, maxSupport)
		t := keyAt(tok, sa, point, r.Len)
		j := k + 1
		lastPoint := point
		for j < maxSupport {
			p := r.Lo + stratum(j, c, maxSupport)
			if keyAt(tok, sa, p, r.Len) != t {
				break
			}
			lastPoint = p
			j++
		}
		nextPoint := r.Hi
		if j < maxSupport {
			nextPoint = r.Lo + stratum(j, c, maxSupport)
		}
		lo := lowerBound(tok, sa, prevPoint+1, point, r.Len, t)
		hi := lowerBound(tok, sa, lastPoint+1, nextPoint, r.Len, t+1)
		dst = append(dst, block(t, lo, hi))
		prevPoint = hi - 1
		k = j
	}
	return dst
}
