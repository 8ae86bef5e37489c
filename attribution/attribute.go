package attribution

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/shouldersnet/shoulders/attribution/index"
	"github.com/shouldersnet/shoulders/attribution/payout"
)

// PPM is the total of the weight_ppm fields of an attribution's contributors (or records).
const PPM = 1_000_000

// Attribution says which records and contributors supplied an output, and by how much.
type Attribution struct {
	Version      int           `json:"version"` // AlgorithmVersion
	IndexHash    string        `json:"index_hash"`
	Tokenizer    TokenizerInfo `json:"tokenizer"`
	Params       Params        `json:"params"`
	Tokens       int           `json:"tokens"`       // output tokens attributed
	Generic      int           `json:"generic"`      // of which generic (match too frequent): no weight
	Unmatched    int           `json:"unmatched"`    // of which not in the index at all: no weight
	TotalWeight  uint64        `json:"total_weight"` // sum of the integer weights
	Unattributed bool          `json:"unattributed"` // no token carried weight; Contributors is empty
	Contributors []Contributor `json:"contributors"` // every contributor with weight, by weight, then name
	Records      []RecordShare `json:"records"`      // the TopRecords records with most weight
	Spans        []Span        `json:"spans"`        // maximal verbatim spans, in output order
}

// Contributor is one contributor's share of an attribution.
type Contributor struct {
	Contributor string `json:"contributor"`
	WeightPPM   uint32 `json:"weight_ppm"`
	Weight      uint64 `json:"weight"`
}

// RecordShare is one record's share of an attribution; WeightPPM is its part of all records' weight.
type RecordShare struct {
	Record      string `json:"record"`
	Contributor string `json:"contributor"`
	WeightPPM   uint32 `json:"weight_ppm"`
	Weight      uint64 `json:"weight"`
}

// Span is a maximal stretch of the output that occurs verbatim in the index.
type Span struct {
	Start   int      `json:"start"` // output token offsets, End exclusive
	End     int      `json:"end"`
	Text    string   `json:"text"`
	Count   int      `json:"count"`   // occurrences in the index
	Generic bool     `json:"generic"` // Count > GenericCount
	Records []string `json:"records"` // up to SpanRecords of the records it occurs in, by ID
}

// Explanation is the attribution of a given text.
type Explanation struct {
	Text        string      `json:"text"`
	Tokens      []uint32    `json:"tokens"`
	Attribution Attribution `json:"attribution"`
}

// Explain attributes text as if the model had produced it: each token is matched by the longest suffix of
// the text up to it that occurs in the index.
func (m *Model) Explain(text string) (*Explanation, error) {
	ids, err := m.encode(text, "text", MaxTextBytes, MaxTextTokens)
	if err != nil {
		return nil, err
	}
	return &Explanation{Text: text, Tokens: ids, Attribution: m.attribute(ids, 0, m.matches(ids, 0))}, nil
}

// ExplainTokens is Explain for text already tokenized with the index's tokenizer.
func (m *Model) ExplainTokens(ids []uint32) (*Explanation, error) {
	if len(ids) > MaxTextTokens {
		return nil, fmt.Errorf("%w: text is %d tokens, limit %d", ErrInput, len(ids), MaxTextTokens)
	}
	text, err := m.ix.Tokenizer().Decode(nil, ids)
	if err != nil {
		return nil, fmt.Errorf("%w: text: %v", ErrInput, err)
	}
	return &Explanation{Text: string(text), Tokens: ids, Attribution: m.attribute(ids, 0, m.matches(ids, 0))}, nil
}

// matches computes, for each token of ctx from from on, the range of the longest suffix of ctx ending with
// it that occurs (matching statistics): extend the previous match by the token; when that fails, search the
// shorter suffixes (the new match is no longer than the old one). Amortized, a handful of searches per token.
func (m *Model) matches(ctx []uint32, from int) []index.Range {
	out := make([]index.Range, 0, len(ctx)-from)
	cur := m.ix.All()
	if from > 0 {
		cur = m.ix.LongestSuffix(ctx[:from])
	}
	for j := from; j < len(ctx); j++ {
		next := m.ix.Extend(cur, ctx[j])
		if next.Empty() {
			next = m.ix.LongestSuffix(ctx[j+1-cur.Len : j+1])
		}
		out = append(out, next)
		cur = next
	}
	return out
}

// attribute computes the attribution of ctx[from:], given each token's match.
func (m *Model) attribute(ctx []uint32, from int, matches []index.Range) Attribution {
	ix, p := m.ix, m.params
	a := Attribution{
		Version:      AlgorithmVersion,
		IndexHash:    ix.Hash(),
		Tokenizer:    m.tokenizerInfo(),
		Params:       p,
		Tokens:       len(matches),
		Contributors: []Contributor{},
		Records:      []RecordShare{},
		Spans:        []Span{},
	}
	logN := log2Q16(uint64(max(ix.TextTokens(), 1)))
	recWeight := make(map[int]uint64)
	var occ []index.Occurrence
	for j, r := range matches {
		if r.Len == 0 || r.Empty() {
			a.Unmatched++
			continue
		}
		if r.Count() > p.GenericCount {
			a.Generic++
			continue
		}
		uni := uint64(max(ix.Unigram(ctx[from+j]), 1))
		surprise := logN - min(log2Q16(uni), logN)
		w := uint64(r.Len) * (1<<16 + surprise)
		occ = ix.Sample(r, p.MaxOccurrences, occ[:0])
		k := uint64(len(occ))
		share, extra := w/k, w%k
		for s, o := range occ {
			v := share
			if uint64(s) < extra {
				v++
			}
			recWeight[o.Record] += v
		}
		a.TotalWeight += w
	}
	m.shares(&a, recWeight)
	a.Spans = m.spans(ctx[from:], matches)
	return a
}

// shares fills the contributor and record shares from the records' weights.
func (m *Model) shares(a *Attribution, recWeight map[int]uint64) {
	ix := m.ix
	if a.TotalWeight == 0 {
		a.Unattributed = true
		return
	}
	type recW struct {
		rec int
		id  string
		w   uint64
	}
	recs := make([]recW, 0, len(recWeight))
	for rec, w := range recWeight { // order fixed by the sort below
		recs = append(recs, recW{rec, ix.Record(rec).ID, w})
	}
	slices.SortFunc(recs, func(x, y recW) int { return cmp.Compare(x.id, y.id) })

	contribW := make(map[int]uint64)
	for _, r := range recs {
		contribW[ix.Record(r.rec).Contributor] += r.w
	}
	type conW struct {
		name string
		w    uint64
	}
	cons := make([]conW, 0, len(contribW))
	for c, w := range contribW {
		cons = append(cons, conW{ix.Contributor(c), w})
	}
	slices.SortFunc(cons, func(x, y conW) int { return cmp.Compare(x.name, y.name) })

	// Largest remainder over keys already in tie-break order.
	cw := make([]uint64, len(cons))
	for i, c := range cons {
		cw[i] = c.w
	}
	for i, ppm := range largestRemainder(cw, PPM) {
		a.Contributors = append(a.Contributors, Contributor{Contributor: cons[i].name, WeightPPM: uint32(ppm), Weight: cons[i].w})
	}
	slices.SortStableFunc(a.Contributors, func(x, y Contributor) int { return cmp.Compare(y.Weight, x.Weight) })

	rw := make([]uint64, len(recs))
	for i, r := range recs {
		rw[i] = r.w
	}
	shares := make([]RecordShare, len(recs))
	for i, ppm := range largestRemainder(rw, PPM) {
		shares[i] = RecordShare{
			Record:      recs[i].id,
			Contributor: ix.Contributor(ix.Record(recs[i].rec).Contributor),
			WeightPPM:   uint32(ppm),
			Weight:      recs[i].w,
		}
	}
	slices.SortStableFunc(shares, func(x, y RecordShare) int { return cmp.Compare(y.Weight, x.Weight) })
	a.Records = shares[:min(len(shares), m.params.TopRecords)]
}

// largestRemainder splits total in proportion to weights (not all zero, sum below 2^64): each gets the
// floor of its exact share, and the units left over go one each to the largest remainders; equal remainders
// go to the earlier index, so callers order weights by their tie-break key.
func largestRemainder(weights []uint64, total uint64) []uint64 {
	var sum uint64
	for _, w := range weights {
		sum += w
	}
	out := make([]uint64, len(weights))
	rem := make([]uint64, len(weights))
	var given uint64
	for i, w := range weights {
		out[i], rem[i] = mulDiv(w, total, sum)
		given += out[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(rem[y], rem[x]) })
	for _, i := range order[:total-given] {
		out[i]++
	}
	return out
}

// spans finds the maximal verbatim spans of out, whose tokens' matches are given.
func (m *Model) spans(out []uint32, matches []index.Range) []Span {
	ix, p := m.ix, m.params
	type cand struct{ start, end, n int }
	var cands []cand
	clip := func(j int) int { return min(matches[j].Len, j+1) } // a span starts within the output
	for j := range matches {
		n := clip(j)
		if n >= p.MinSpanTokens && (j+1 == len(matches) || clip(j+1) <= n) {
			cands = append(cands, cand{j + 1 - n, j + 1, n})
		}
	}
	if len(cands) > p.MaxSpans {
		slices.SortStableFunc(cands, func(x, y cand) int { return cmp.Compare(y.n, x.n) })
		cands = cands[:p.MaxSpans]
		slices.SortFunc(cands, func(x, y cand) int { return cmp.Compare(x.start, y.start) })
	}
	spans := make([]Span, 0, len(cands))
	var occ []index.Occurrence
	for _, c := range cands {
		r := matches[c.end-1]
		if r.Len != c.n {
			r = ix.Find(out[c.start:c.end])
		}
		text, _ := ix.Tokenizer().Decode(nil, out[c.start:c.end]) // output tokens are text by construction
		s := Span{Start: c.start, End: c.end, Text: string(text), Count: r.Count(), Generic: r.Count() > p.GenericCount, Records: []string{}}
		occ = occ[:0]
		if p.SpanRecords > 0 {
			occ = ix.Sample(r, p.SpanRecords, occ)
		}
		for _, o := range occ {
			s.Records = append(s.Records, ix.Record(o.Record).ID)
		}
		slices.Sort(s.Records)
		s.Records = slices.Compact(s.Records)
		spans = append(spans, s)
	}
	return spans
}

// PayoutWeights returns the contributors' weight_ppm as the contributor weights of a payout.Split.
func (a Attribution) PayoutWeights() []payout.Weight {
	out := make([]payout.Weight, len(a.Contributors))
	for i, c := range a.Contributors {
		out[i] = payout.Weight{Account: c.Contributor, Weight: uint64(c.WeightPPM)}
	}
	return out
}
