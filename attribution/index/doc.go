// Package index is the suffix-array index of a corpus: the data behind the ∞-gram model and attribution.
//
// It owns the token stream of a corpus, its suffix array, the table from token offset to record, the
// on-disk format of all of them, and the queries over them: how often a token sequence occurs, where, the
// longest suffix of a context that occurs, and which tokens follow it. It knows nothing of the network, of
// money, or of the model built on top; it never writes anywhere but the directory it is told to write.
//
// # The stream
//
// A corpus is an ordered list of records, each with an ID and a contributor. Their texts are tokenized (see
// package tokenize; the vocabulary is learned from the corpus itself) and laid end to end, each followed by
// the separator token 0:
//
//	rec0 tokens · 0 · rec1 tokens · 0 · … · rec(R-1) tokens · 0
//
// so no pattern of text tokens matches across a record boundary, and every occurrence of a text pattern has
// a next token (the separator when the occurrence ends its record). The suffix array orders every position
// of the stream by the suffix starting there; it is built by SA-IS (package sais) in linear time.
//
// # Directory format, version 1
//
// An index directory holds six files. All integers are little-endian.
//
//	manifest.json  what the other files are; see Manifest. Written last, so a directory without it is an
//	               unfinished build.
//	vocab.bin      the tokenizer tables (tokenize.Tokenizer.Marshal).
//	tokens.bin     the stream: N tokens of token_bytes bytes each (2 when the vocabulary has at most 65,536
//	               IDs, else 4).
//	sa.bin         the suffix array, bit-packed: entry i is the sa_bits-bit unsigned integer at bit offset
//	               i·sa_bits (bit 0 is the least significant bit of byte 0), with sa_bits = bit length of
//	               N-1; then 8 zero bytes so that any entry can be read with one unaligned 64-bit load.
//	               Size: ceil(N·sa_bits/8)+8 bytes.
//	unigram.bin    V+1 u32 (V = vocabulary size): entry t is the number of stream tokens with ID < t, so the
//	               suffix-array block of the suffixes starting with token t is [entry t, entry t+1), and
//	               entry V = N.
//	records.bin    magic "SHRECORD"; u32 C, then C contributor names (u16 length, bytes) in order of first
//	               appearance; u32 R; R u32 record starts (stream offset of each record's first token,
//	               strictly increasing from 0); R u32 contributor indexes; R record IDs (u16 length, bytes).
//
// Each file's size and SHA-256 are in the manifest. The index hash is the SHA-256, in hex, of the text
//
//	shoulders-attribution-index 1\n
//	tokens N\n records R\n contributors C\n token_bytes B\n sa_bits W\n
//	tokenizer <tokenizer version> <unicode version> <vocabulary size> <tables hash>\n
//	part <name> <size> <sha256>\n   (one line per file above except the manifest, in that order)
//
// (each field on its own line exactly as shown, single spaces). It names the whole index: two machines that
// built or fetched the same corpus compare index hashes, and an attribution carries the hash of the index it
// was computed on. A build is deterministic — the same records in the same order with the same options give
// the same bytes — so independent builds agree.
//
// With 16-bit tokens an index costs 2 + sa_bits/8 bytes per token plus the records and vocabulary: 5.4 B at
// 100 M tokens (sa_bits 27), at most 5.9 B up to the limit of MaxTokens (2^31-1) tokens. A vocabulary above
// 65,536 IDs doubles the stream to 4 bytes per token (about 7.4 B per token in all).
//
// # Opening
//
// Open maps the files read-only (mmap) and, before answering anything, checks every file's size and SHA-256
// against the manifest and the manifest against its index hash, so a truncated or corrupted directory is an
// error naming the file, never a crash. It then checks the structure (record starts, unigram table,
// separators) so that even a directory whose manifest was rewritten to match corrupted files cannot make a
// query read out of bounds: queries clamp every suffix-array entry to the stream. Hashing costs one pass over
// the files: 0.75 s for a 100 M-token index on the 2-core machine of the benchmarks. An Index is read-only and safe for concurrent use;
// it must not be used after Close.
//
// # Decisions where the issue is silent
//
//   - A pattern containing the separator matches nothing: records are units of attribution.
//   - Empty records, duplicate record IDs and records longer than the stream limit are refused at build
//     time, naming the record. Non-UTF-8 bytes are kept through byte fallback unless BuildOptions.TextOnly
//     asks for them to be refused.
//   - Next-token distributions and occurrence lists are bounded by the caller (maxSupport, max): beyond the
//     bound they come from a deterministic stratified sample of the suffix-array block, which is sorted by
//     the following text, so every continuation holding at least 1/max of the occurrences is counted
//     exactly.
package index
