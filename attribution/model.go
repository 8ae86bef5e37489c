package attribution

import (
	"errors"
	"fmt"
	"unicode"

	"github.com/shouldersnet/shoulders/attribution/index"
	"github.com/shouldersnet/shoulders/attribution/internal/splitmix"
	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// AlgorithmVersion numbers the attribution rules in the package documentation. It changes whenever the same
// index and output would be attributed differently.
const AlgorithmVersion = 1

// Limits on what a caller can make a model hold or compute.
const (
	MaxPromptBytes      = 64 << 10
	MaxPromptTokens     = 2048
	MaxOutputTokens     = 4096
	MaxTextBytes        = 256 << 10 // Explain
	MaxTextTokens       = 8192      // Explain
	MaxTemperatureMilli = 10000     // temperature 10
	maxOccurrences      = 1024
	maxSpans            = 256
	maxSpanRecords      = 64
	maxTopRecords       = 1000
)

// ErrInput reports a prompt, text or parameter outside what the model accepts.
var ErrInput = errors.New("attribution: bad input")

// Params are the attribution parameters. They are part of every Attribution, and a verifier recomputes with
// the parameters the result names (within the limits above).
type Params struct {
	MaxOccurrences int `json:"max_occurrences"` // occurrences credited per token, sampled beyond this
	GenericCount   int `json:"generic_count"`   // a match occurring more often than this weighs nothing
	MinSpanTokens  int `json:"min_span_tokens"` // shortest verbatim span reported
	MaxSpans       int `json:"max_spans"`       // most spans reported, longest first
	SpanRecords    int `json:"span_records"`    // records listed per span
	TopRecords     int `json:"top_records"`     // records listed in the attribution
}

// DefaultParams are the parameters the CLI and the builtin executor use.
func DefaultParams() Params {
	return Params{MaxOccurrences: 32, GenericCount: 1000, MinSpanTokens: 4, MaxSpans: 16, SpanRecords: 5, TopRecords: 10}
}

// Validate checks every field against its limit and names the first one out of range.
func (p Params) Validate() error {
	check := []struct {
		name     string
		v, lo, h int
	}{
		{"max_occurrences", p.MaxOccurrences, 1, maxOccurrences},
		{"generic_count", p.GenericCount, 1, index.MaxTokens},
		{"min_span_tokens", p.MinSpanTokens, 1, MaxOutputTokens},
		{"max_spans", p.MaxSpans, 0, maxSpans},
		{"span_records", p.SpanRecords, 0, maxSpanRecords},
		{"top_records", p.TopRecords, 0, maxTopRecords},
	}
	for _, c := range check {
		if c.v < c.lo || c.v > c.h {
			return fmt.Errorf("%w: %s is %d, must be in [%d, %d]", ErrInput, c.name, c.v, c.lo, c.h)
		}
	}
	return nil
}

// GenerateParams are the inputs of a generation besides the prompt.
type GenerateParams struct {
	MaxTokens        int    `json:"max_tokens"`        // 1..MaxOutputTokens
	Seed             uint64 `json:"seed"`              // seeds the SplitMix64 generator
	TemperatureMilli int    `json:"temperature_milli"` // 0 greedy, 1000 plain ∞-gram sampling, up to MaxTemperatureMilli
	MaxSupport       int    `json:"max_support"`       // continuations considered at temperatures other than 1 (1..index.MaxSupport)
}

// DefaultGenerateParams are the CLI's defaults.
func DefaultGenerateParams() GenerateParams {
	return GenerateParams{MaxTokens: 64, TemperatureMilli: 1000, MaxSupport: 1024}
}

// Validate checks every field and names the first one out of range.
func (g GenerateParams) Validate() error {
	switch {
	case g.MaxTokens < 1 || g.MaxTokens > MaxOutputTokens:
		return fmt.Errorf("%w: max_tokens is %d, must be in [1, %d]", ErrInput, g.MaxTokens, MaxOutputTokens)
	case g.TemperatureMilli < 0 || g.TemperatureMilli > MaxTemperatureMilli:
		return fmt.Errorf("%w: temperature_milli is %d, must be in [0, %d]", ErrInput, g.TemperatureMilli, MaxTemperatureMilli)
	case g.MaxSupport < 1 || g.MaxSupport > index.MaxSupport:
		return fmt.Errorf("%w: max_support is %d, must be in [1, %d]", ErrInput, g.MaxSupport, index.MaxSupport)
	}
	return nil
}

// Model is the ∞-gram model over one index with one set of attribution parameters. It is immutable and safe
// for concurrent use as long as the index stays open.
type Model struct {
	ix     *index.Index
	params Params
}

// New returns the model over ix.
func New(ix *index.Index, p Params) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Model{ix: ix, params: p}, nil
}

// Index is the model's index.
func (m *Model) Index() *index.Index { return m.ix }

// Params are the model's attribution parameters.
func (m *Model) Params() Params { return m.params }

// Stop says why a generation ended.
const (
	StopEndOfRecord = "end_of_record" // the separator was drawn
	StopMaxTokens   = "max_tokens"
)

// Generation is a generated output with its attribution: everything a validator needs to recompute it.
type Generation struct {
	Prompt       string         `json:"prompt"`
	Params       GenerateParams `json:"params"`
	Output       string         `json:"output"`
	OutputTokens []uint32       `json:"output_tokens"`
	Stop         string         `json:"stop"`
	Attribution  Attribution    `json:"attribution"`
}

// Generate continues prompt with the ∞-gram model and attributes the output.
func (m *Model) Generate(prompt string, g GenerateParams) (*Generation, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	ctx, err := m.encode(prompt, "prompt", MaxPromptBytes, MaxPromptTokens)
	if err != nil {
		return nil, err
	}
	return m.generate(prompt, ctx, g)
}

// GenerateTokens is Generate for a prompt already tokenized with the index's tokenizer (its Prompt field is
// the decoded prompt).
func (m *Model) GenerateTokens(prompt []uint32, g GenerateParams) (*Generation, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(prompt) > MaxPromptTokens {
		return nil, fmt.Errorf("%w: prompt is %d tokens, limit %d", ErrInput, len(prompt), MaxPromptTokens)
	}
	text, err := m.ix.Tokenizer().Decode(nil, prompt)
	if err != nil {
		return nil, fmt.Errorf("%w: prompt: %v", ErrInput, err)
	}
	return m.generate(string(text), append(make([]uint32, 0, len(prompt)+g.MaxTokens), prompt...), g)
}

func (m *Model) generate(prompt string, ctx []uint32, g GenerateParams) (*Generation, error) {
	from := len(ctx)
	rng := splitmix.New(g.Seed)
	cur := m.ix.LongestSuffix(ctx)
	matches := make([]index.Range, 0, g.MaxTokens)
	stop := StopMaxTokens
	var conts []index.Continuation
	for len(matches) < g.MaxTokens {
		var t uint32
		var next index.Range
		t, next, conts = m.draw(cur, g, rng, conts[:0])
		if t == tokenize.Separator {
			stop = StopEndOfRecord
			break
		}
		ctx = append(ctx, t)
		matches = append(matches, next)
		cur = next
	}
	out := ctx[from:]
	text, err := m.ix.Tokenizer().Decode(nil, out)
	if err != nil {
		return nil, fmt.Errorf("attribution: the index produced a token that is not text (corrupted index?): %w", err)
	}
	return &Generation{
		Prompt:       prompt,
		Params:       g,
		Output:       string(text),
		OutputTokens: append([]uint32{}, out...),
		Stop:         stop,
		Attribution:  m.attribute(ctx, from, matches),
	}, nil
}

// draw picks the token after the pattern of cur and returns it with the range of the pattern followed by it.
func (m *Model) draw(cur index.Range, g GenerateParams, rng *splitmix.Rand, conts []index.Continuation) (uint32, index.Range, []index.Continuation) {
	switch g.TemperatureMilli {
	case 1000:
		i := rng.Below(uint64(cur.Count()))
		t := m.ix.NextAt(cur, int(i))
		return t, m.ix.Extend(cur, t), conts
	case 0:
		conts = m.ix.Next(cur, g.MaxSupport, conts)
		best := conts[0]
		for _, c := range conts[1:] {
			if c.Count() > best.Count() {
				best = c
			}
		}
		return best.Token, best.Range, conts
	}
	// count^(1/T) = 2^(log2(count)·1000/TemperatureMilli), relative to the largest, in Q32.
	conts = m.ix.Next(cur, g.MaxSupport, conts)
	exps := make([]uint64, len(conts))
	var top uint64
	for i, c := range conts {
		exps[i] = log2Q16(uint64(c.Count())) * 1000 / uint64(g.TemperatureMilli)
		top = max(top, exps[i])
	}
	var total uint64
	for i := range exps {
		exps[i] = exp2NegQ32(top - exps[i])
		total += exps[i]
	}
	u := rng.Below(total)
	for i, w := range exps {
		if u < w {
			return conts[i].Token, conts[i].Range, conts
		}
		u -= w
	}
	panic("attribution: sampling ran past the total weight") // unreachable: u < total
}

// encode tokenizes s after checking its size against the limits; what names s in errors.
func (m *Model) encode(s, what string, maxBytes, maxTokens int) ([]uint32, error) {
	if len(s) > maxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInput, what, len(s), maxBytes)
	}
	ids := m.ix.Tokenizer().Encode(nil, []byte(s))
	if len(ids) > maxTokens {
		return nil, fmt.Errorf("%w: %s is %d tokens, limit %d", ErrInput, what, len(ids), maxTokens)
	}
	return ids, nil
}

// TokenizerInfo identifies a tokenizer in a result.
type TokenizerInfo struct {
	Version int    `json:"version"`
	Unicode string `json:"unicode"`
	Hash    string `json:"hash"`
}

func (m *Model) tokenizerInfo() TokenizerInfo {
	return TokenizerInfo{Version: tokenize.Version, Unicode: unicode.Version, Hash: m.ix.Tokenizer().Hash()}
}
