package attribution

import (
	"errors"
	"fmt"
	"slices"
)

// ErrMismatch reports a result that differs from its recomputation, or that was computed on another index,
// tokenizer or algorithm version.
var ErrMismatch = errors.New("attribution: result does not match its recomputation")

// Verify recomputes g on m's index — generation and attribution, with the parameters g names — and returns
// nil when every field agrees, or an ErrMismatch naming the first field that differs. A result naming
// parameters outside the limits is refused (ErrInput) before any work.
func (m *Model) Verify(g *Generation) error {
	mm, err := m.forResult(g.Attribution)
	if err != nil {
		return err
	}
	again, err := mm.Generate(g.Prompt, g.Params)
	if err != nil {
		return fmt.Errorf("attribution: recomputing: %w", err)
	}
	return firstDifference(append([]check{
		{"output_tokens", slices.Equal(g.OutputTokens, again.OutputTokens)},
		{"output", g.Output == again.Output},
		{"stop", g.Stop == again.Stop},
	}, attributionChecks(g.Attribution, again.Attribution)...))
}

// VerifyExplanation recomputes the attribution of e.Tokens on m's index, as Verify does for a generation,
// and checks that they decode to e.Text.
func (m *Model) VerifyExplanation(e *Explanation) error {
	mm, err := m.forResult(e.Attribution)
	if err != nil {
		return err
	}
	again, err := mm.ExplainTokens(e.Tokens)
	if err != nil {
		return fmt.Errorf("attribution: recomputing: %w", err)
	}
	return firstDifference(append([]check{
		{"text", e.Text == again.Text},
	}, attributionChecks(e.Attribution, again.Attribution)...))
}

// forResult checks that a result was computed on this index, tokenizer and algorithm, and returns the model
// with the result's parameters.
func (m *Model) forResult(a Attribution) (*Model, error) {
	switch {
	case a.Version != AlgorithmVersion:
		return nil, fmt.Errorf("%w: algorithm version %d, this build computes version %d", ErrMismatch, a.Version, AlgorithmVersion)
	case a.IndexHash != m.ix.Hash():
		return nil, fmt.Errorf("%w: index_hash %s, this index is %s", ErrMismatch, a.IndexHash, m.ix.Hash())
	case a.Tokenizer != m.tokenizerInfo():
		return nil, fmt.Errorf("%w: tokenizer %+v, this index has %+v", ErrMismatch, a.Tokenizer, m.tokenizerInfo())
	}
	return New(m.ix, a.Params)
}

type check struct {
	field string
	same  bool
}

func firstDifference(checks []check) error {
	for _, c := range checks {
		if !c.same {
			return fmt.Errorf("%w: %s differs", ErrMismatch, c.field)
		}
	}
	return nil
}

// attributionChecks compares every field of two attributions computed with the same provenance.
func attributionChecks(a, b Attribution) []check {
	return []check{
		{"attribution.params", a.Params == b.Params},
		{"attribution.tokens", a.Tokens == b.Tokens},
		{"attribution.generic", a.Generic == b.Generic},
		{"attribution.unmatched", a.Unmatched == b.Unmatched},
		{"attribution.total_weight", a.TotalWeight == b.TotalWeight},
		{"attribution.unattributed", a.Unattributed == b.Unattributed},
		{"attribution.contributors", slices.Equal(a.Contributors, b.Contributors)},
		{"attribution.records", slices.Equal(a.Records, b.Records)},
		{"attribution.spans", slices.EqualFunc(a.Spans, b.Spans, func(x, y Span) bool {
			return x.Start == y.Start && x.End == y.End && x.Text == y.Text && x.Count == y.Count &&
				x.Generic == y.Generic && slices.Equal(x.Records, y.Records)
		})},
	}
}
