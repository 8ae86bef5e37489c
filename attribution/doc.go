// Package attribution is Proof of Attribution for the built-in model: an ∞-gram language model (Liu et al.,
// 2024) over a suffix-array index of a datanet's records, the attribution of every output to the records
// and contributors that supplied it, and the recomputation a validator runs to check a worker's claim.
//
// It owns generation (Generate), attribution of given text (Explain), their self-describing results
// (Generation, Explanation, Attribution) and their verification (Verify, VerifyExplanation). The index lives
// in package index, the tokenizer in package tokenize, the split of a fee in package payout. Nothing here
// touches the network, a clock, floating point, or map iteration order: the same index and inputs give the
// same bytes on every machine.
//
// # Generation
//
// The context is the prompt's tokens followed by the output so far. At each step the next token is drawn
// from the tokens that follow the longest suffix of the context occurring in the index. The separator
// between records is one of those tokens — it means "the record ends here" — and drawing it ends the output
// (Stop "end_of_record"). With temperature 1 (TemperatureMilli 1000, the default) the draw picks one
// occurrence of the suffix uniformly with the seeded generator and takes the token after it, which is
// exactly the ∞-gram distribution. With temperature 0 the most frequent next token wins, ties to the lower
// ID. Other temperatures weight each next token by count^(1/T), computed in fixed point (2^(log2(count)/T),
// integer log2 and exp2), over at most MaxSupport stratified continuations (see index.Next).
//
// Because the drawn token follows an occurrence of the suffix, the suffix extended by it occurs too, and it
// is the longest occurring suffix of the new context: each step costs one range narrowing, not a search.
//
// # Attribution
//
// For each output token, its match is the longest suffix of the context ending with that token that occurs
// in the index (the same range generation narrowed to; Explain finds it by matching statistics). Its weight
// is
//
//	weight = match length × (1 + surprise)          (in Q16 fixed point)
//	surprise = log2(text tokens) − log2(occurrences of the token)   (= −log2 of its unigram probability)
//
// Surprise is measured against the unigram distribution (OLMoTrace's span-unigram measure), not the
// ∞-gram's own probability: copying a unique record has ∞-gram probability 1 at every step, and it is the
// record that should be credited. A token whose match occurs more than GenericCount times weighs nothing:
// the span is generic. A token that does not occur at all weighs nothing.
//
// A token's weight is split equally (in integer units, the remainder one unit at a time in sample order)
// among the occurrences of its match: all of them up to MaxOccurrences, else a stratified sample of
// MaxOccurrences (index.Sample). Each occurrence credits its record; records credit their contributors.
// Weights are reported as integers and as parts per million that sum to exactly 1,000,000, by largest
// remainder with ties broken by contributor name (records: by record ID). When no token has weight, the
// attribution lists no contributor and says Unattributed.
//
// Spans are the maximal verbatim spans of the output (OLMoTrace): a stretch of output tokens that occurs in
// the index and cannot be extended on either side within the output, at least MinSpanTokens long, with its
// occurrence count and up to SpanRecords of its records. At most MaxSpans are kept, longest first.
//
// # Verification
//
// Generation and Explanation carry everything needed to recompute them: the index hash, the tokenizer
// (version, Unicode version, tables hash), the attribution algorithm version and parameters, the prompt,
// seed, temperature and limits. Verify and VerifyExplanation recompute on the verifier's own index and
// report the first field that differs.
package attribution
