package index

import (
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"
	"unsafe"

	"github.com/shouldersnet/shoulders/attribution/internal/hugepage"
	"github.com/shouldersnet/shoulders/attribution/sais"
	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// Limits on what a build accepts.
const (
	// MaxTokens is the longest stream (text tokens plus one separator per record) an index may hold.
	MaxTokens = sais.MaxLen
	// MaxIDBytes bounds a record ID.
	MaxIDBytes = 1024
	// MaxContributorBytes bounds a contributor name.
	MaxContributorBytes = 256
	// DefaultMaxVocab is the vocabulary bound when BuildOptions leaves it zero: the largest that keeps
	// 16-bit tokens.
	DefaultMaxVocab = tokenize.U16Vocab
)

// ErrCorpus reports records that cannot be indexed.
var ErrCorpus = errors.New("index: bad corpus")

// Record is one unit of a corpus: attribution credits records, and through them their contributors.
type Record struct {
	ID          string // unique within the corpus, valid UTF-8, at most MaxIDBytes
	Contributor string // who is paid for it: valid UTF-8, at most MaxContributorBytes
	Text        []byte // not empty
}

// BuildOptions tune a build. The zero value is the default.
type BuildOptions struct {
	// MaxVocab bounds the vocabulary (reserved IDs included); 0 means DefaultMaxVocab. Above 65,536 the
	// stream takes 4 bytes per token instead of 2.
	MaxVocab int
	// TextOnly refuses records that are not valid UTF-8 instead of keeping their bytes by byte fallback.
	TextOnly bool
	// Phase, when set, is called as each phase of the build starts ("tokenize", "sort", "pack"), so a caller
	// can time them. The index package itself reads no clock.
	Phase func(name string)
}

// Build tokenizes records, builds the suffix array and returns the index in memory, ready for queries and
// for WriteDir. It holds the stream (2 or 4 bytes per token) and the suffix array (4 bytes per token, later
// packed in place) at the same time, plus the caller's records.
func Build(records []Record, opts BuildOptions) (*Index, error) {
	if errBigEndian != nil {
		return nil, errBigEndian
	}
	phase := opts.Phase
	if phase == nil {
		phase = func(string) {}
	}
	maxVocab := opts.MaxVocab
	if maxVocab == 0 {
		maxVocab = DefaultMaxVocab
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrCorpus)
	}
	if err := checkRecords(records, opts.TextOnly); err != nil {
		return nil, err
	}

	phase("tokenize")
	// Cut the corpus into pieces once: count them and keep their handles, learn the vocabulary, then
	// translate the handles into IDs (what Encode would give, without cutting the text again).
	var bytesTotal int
	for _, r := range records {
		bytesTotal += len(r.Text)
	}
	counter := tokenize.NewCounter()
	// The handles take 4 bytes per token, as the suffix array does; their memory is reused for it, so its
	// capacity must cover the stream, which byte fallbacks make longer than the handles (GCIDE: one token
	// per 2.9 bytes). A capacity the stream does not reach costs address space only: pages never written
	// are never backed, while a separate suffix array would be one more allocation touched from scratch.
	handles := make([]uint32, 0, bytesTotal/2+len(records)+1)
	hugepage.Advise(handles[:cap(handles)])
	ends := make([]int, len(records))
	for i, r := range records {
		handles = counter.AddHandles(handles, r.Text)
		ends[i] = len(handles)
	}
	tok, err := counter.Learn(maxVocab)
	if err != nil {
		return nil, err
	}
	b := &builder{tok: tok, records: records, tr: counter.Translator(tok), handles: handles, ends: ends}
	if tok.Size() <= tokenize.U16Vocab {
		err = encode(b, &b.t16)
	} else {
		err = encode(b, &b.t32)
	}
	if err != nil {
		return nil, err
	}

	phase("sort")
	n := b.n
	var sa []int32
	if cap(handles) >= n {
		sa = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(handles))), n)
	} else {
		sa = make([]int32, n)
	}
	handles, b.handles, b.tr = nil, nil, nil
	if b.t16 != nil {
		err = sais.Sort(b.t16, sa, tok.Size())
	} else {
		err = sais.Sort(b.t32, sa, tok.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("index: suffix array: %w", err)
	}
	if invariants {
		if b.t16 != nil {
			err = sais.CheckSorted(b.t16, sa)
		} else {
			err = sais.CheckSorted(b.t32, sa)
		}
		if err != nil {
			panic(err)
		}
	}

	phase("pack")
	width := uint(bits.Len(uint(n - 1)))
	if width == 0 {
		width = 1
	}
	packedSA := packInPlace(sa, width)
	sa = nil

	ix := &Index{
		tok:     tok,
		n:       n,
		t16:     b.t16,
		t32:     b.t32,
		sa:      newPacked(packedSA, width),
		unigram: b.unigram,
		rec:     b.rec,
	}
	parts := [numParts][]byte{
		partVocab:   tok.Marshal(),
		partTokens:  ix.tokenBytes(),
		partSA:      packedSA,
		partUnigram: u32Bytes(ix.unigram),
		partRecords: b.rec.marshal(),
	}
	ix.man = newManifest(ix, parts)
	ix.parts = parts
	return ix, nil
}

func checkRecords(records []Record, textOnly bool) error {
	ids := make(map[string]int, len(records))
	for i, r := range records {
		switch {
		case r.ID == "":
			return fmt.Errorf("%w: record %d has an empty ID", ErrCorpus, i)
		case len(r.ID) > MaxIDBytes:
			return fmt.Errorf("%w: record %d: ID is %d bytes, limit %d", ErrCorpus, i, len(r.ID), MaxIDBytes)
		case !utf8.ValidString(r.ID):
			return fmt.Errorf("%w: record %d: ID %q is not valid UTF-8", ErrCorpus, i, r.ID)
		case r.Contributor == "":
			return fmt.Errorf("%w: record %q has no contributor", ErrCorpus, r.ID)
		case len(r.Contributor) > MaxContributorBytes:
			return fmt.Errorf("%w: record %q: contributor is %d bytes, limit %d", ErrCorpus, r.ID, len(r.Contributor), MaxContributorBytes)
		case !utf8.ValidString(r.Contributor):
			return fmt.Errorf("%w: record %q: contributor %q is not valid UTF-8", ErrCorpus, r.ID, r.Contributor)
		case len(r.Text) == 0:
			return fmt.Errorf("%w: record %q is empty", ErrCorpus, r.ID)
		}
		if textOnly && !utf8.Valid(r.Text) {
			return fmt.Errorf("%w: record %q is not valid UTF-8 at byte %d and the corpus is text-only", ErrCorpus, r.ID, invalidAt(r.Text))
		}
		if j, dup := ids[r.ID]; dup {
			return fmt.Errorf("%w: records %d and %d have the same ID %q", ErrCorpus, j, i, r.ID)
		}
		ids[r.ID] = i
	}
	return nil
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

type builder struct {
	tok     *tokenize.Tokenizer
	tr      *tokenize.Translator
	handles []uint32 // the pieces of all records, end to end
	ends    []int    // where each record's handles end
	records []Record
	t16     []uint16
	t32     []uint32
	n       int
	unigram []uint32
	rec     records
}

// encode fills the stream, the unigram table and the record table.
func encode[T uint16 | uint32](b *builder, stream *[]T) error {
	// Exact when every piece is in the vocabulary; append grows the stream for byte fallbacks.
	s := make([]T, 0, len(b.handles)+len(b.records))
	hugepage.Advise(s[:cap(s)])
	counts := make([]uint32, b.tok.Size()+1)
	contribIndex := make(map[string]uint32)
	b.rec.starts = make([]uint32, len(b.records))
	b.rec.contrib = make([]uint32, len(b.records))
	b.rec.ids = make([]string, len(b.records))
	var scratch []uint32
	for i, r := range b.records {
		start := 0
		if i > 0 {
			start = b.ends[i-1]
		}
		scratch = b.tr.Append(scratch[:0], b.handles[start:b.ends[i]])
		if len(s)+len(scratch)+1 > MaxTokens {
			return fmt.Errorf("%w: the corpus is over %d tokens at record %q", ErrCorpus, MaxTokens, r.ID)
		}
		b.rec.starts[i] = uint32(len(s))
		for _, id := range scratch {
			s = append(s, T(id))
			counts[id+1]++
		}
		s = append(s, T(tokenize.Separator))
		counts[tokenize.Separator+1]++
		ci, ok := contribIndex[r.Contributor]
		if !ok {
			ci = uint32(len(b.rec.contributors))
			contribIndex[r.Contributor] = ci
			b.rec.contributors = append(b.rec.contributors, r.Contributor)
		}
		b.rec.contrib[i] = ci
		b.rec.ids[i] = r.ID
	}
	for t := 1; t < len(counts); t++ {
		counts[t] += counts[t-1]
	}
	*stream = s
	b.n = len(s)
	b.unigram = counts
	return nil
}

// packInPlace packs sa into width-bit entries (width <= 32) in sa's own memory and returns the packed bytes
// followed by 8 zero bytes. Safe in place: the 64-bit word flushed at byte 8k holds bits of entries below
// 2(k+1), whose 4-byte slots end at or before byte 8(k+1).
func packInPlace(sa []int32, width uint) []byte {
	n := len(sa)
	size := (n*int(width)+7)/8 + 8
	var buf []byte
	if size <= 4*n {
		buf = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(sa))), 4*n)[:size]
	} else {
		// Tiny arrays: the padding does not fit in place.
		buf = make([]byte, size)
	}
	in := sa
	if size > 4*n {
		in = append([]int32(nil), sa...)
	}
	var acc uint64 // pending bits, low first
	var have uint  // number of pending bits
	out := 0
	for _, v := range in {
		acc |= uint64(uint32(v)) << have
		have += width
		if have >= 64 {
			putU64(buf[out:], acc)
			out += 8
			have -= 64
			acc = uint64(uint32(v)) >> (width - have)
			if have == 0 {
				acc = 0
			}
		}
	}
	// Flush the remaining bits, then zero the rest (the padding).
	for out < size {
		buf[out] = byte(acc)
		acc >>= 8
		out++
	}
	return buf
}

func putU64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
}
