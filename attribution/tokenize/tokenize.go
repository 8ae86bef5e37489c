// Package tokenize turns text into token IDs and back, deterministically, for the attribution index.
//
// It owns the pre-tokenizer rules, the vocabulary learned from a corpus, and the byte format of that
// vocabulary. It does no I/O.
//
// # Pieces
//
// Text is first cut into pieces (rules version Version):
//   - a run of letters and combining marks (Unicode L and M), optionally led by one space U+0020;
//   - a run of numbers (Unicode N), optionally led by one space;
//   - one other rune (punctuation, symbol, control), optionally led by one space;
//   - a run of whitespace; when it is followed by a piece above and ends in a space U+0020, that last space
//     is left to lead the next piece (so " the cat" is " the", " cat");
//   - each byte that is not part of valid UTF-8, alone.
//
// A piece longer than MaxPieceBytes is cut at the last rune boundary within the limit. The classes come from
// Go's unicode tables; their Unicode version (unicode.Version) is part of the tokenizer's identity, because a
// newer table can classify a rune differently and so cut text differently.
//
// # IDs
//
// ID 0 (Separator) is reserved for the boundary between records and never comes out of Encode. IDs 1..256 are
// the bytes 0x00..0xFF (byte fallback). IDs from FirstPiece on are vocabulary pieces. A piece in the
// vocabulary is encoded as its ID; any other piece as its bytes, so every byte string, valid UTF-8 or not,
// round-trips exactly: Decode(Encode(b)) == b.
//
// # Vocabulary
//
// Learn counts the pieces of a corpus and keeps the most frequent multi-byte ones (ties broken by byte
// order) up to a bound on the vocabulary size; a single-byte piece is already a byte token. The vocabulary
// is ordered by that rank. Its serialized form (Marshal) is the tokenizer's "tables"; Hash is the SHA-256 of
// those bytes, and two machines with the same hash cut every text into the same IDs.
package tokenize

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

const (
	// Version numbers the pre-tokenizer rules above. It changes whenever the rules cut any text differently.
	Version = 1
	// Separator is the token between records in an index stream. It is not text: Encode never produces it
	// and Decode refuses it.
	Separator uint32 = 0
	// FirstByte is the ID of byte 0x00; byte b is FirstByte+b.
	FirstByte uint32 = 1
	// FirstPiece is the ID of the first vocabulary piece.
	FirstPiece uint32 = 257
	// MaxPieceBytes bounds the length of one piece.
	MaxPieceBytes = 32
	// MaxVocab is the largest vocabulary size (IDs, including the reserved ones) a tokenizer may have.
	MaxVocab = 1 << 24
	// U16Vocab is the largest vocabulary whose IDs fit in 16 bits.
	U16Vocab = 1 << 16
)

// ErrFormat reports serialized tables that cannot be parsed or do not belong to this tokenizer version.
var ErrFormat = errors.New("tokenize: bad tokenizer tables")

// ErrToken reports an ID that is not text in this vocabulary.
var ErrToken = errors.New("tokenize: not a text token")

// Tokenizer encodes and decodes text with one vocabulary. It is immutable and safe for concurrent use.
type Tokenizer struct {
	pieces [][]byte // ID-FirstPiece → bytes
	lookup map[string]uint32
	tables []byte
	hash   [32]byte
}

// Size is the number of IDs, reserved ones included: every ID Encode returns is below it.
func (t *Tokenizer) Size() int { return int(FirstPiece) + len(t.pieces) }

// Hash is the SHA-256 of the tokenizer's tables (Marshal), in hex.
func (t *Tokenizer) Hash() string { return hex.EncodeToString(t.hash[:]) }

// Marshal returns the serialized tables. The caller must not modify them.
func (t *Tokenizer) Marshal() []byte { return t.tables }

// Piece returns the bytes of a vocabulary or byte ID; it fails for the separator and unknown IDs.
func (t *Tokenizer) Piece(id uint32) ([]byte, error) {
	switch {
	case id == Separator:
		return nil, fmt.Errorf("%w: ID 0 is the record separator", ErrToken)
	case id < FirstPiece:
		return byteTokens[id-FirstByte : id-FirstByte+1], nil
	case uint64(id-FirstPiece) < uint64(len(t.pieces)):
		return t.pieces[id-FirstPiece], nil
	}
	return nil, fmt.Errorf("%w: ID %d is outside the vocabulary of %d", ErrToken, id, t.Size())
}

var byteTokens = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// Encode appends the IDs of text to dst and returns the extended slice.
func (t *Tokenizer) Encode(dst []uint32, text []byte) []uint32 {
	for len(text) > 0 {
		n, valid := nextPiece(text)
		piece := text[:n]
		text = text[n:]
		if valid && n > 1 {
			if id, ok := t.lookup[string(piece)]; ok {
				dst = append(dst, id)
				continue
			}
		}
		for _, b := range piece {
			dst = append(dst, FirstByte+uint32(b))
		}
	}
	return dst
}

// Decode appends the text of ids to dst. It fails, naming the position, on the separator or an ID outside
// the vocabulary.
func (t *Tokenizer) Decode(dst []byte, ids []uint32) ([]byte, error) {
	for i, id := range ids {
		p, err := t.Piece(id)
		if err != nil {
			return dst, fmt.Errorf("token %d: %w", i, err)
		}
		dst = append(dst, p...)
	}
	return dst, nil
}

// Counter counts the pieces of a corpus, to learn a vocabulary from it. It can also hand back each piece as
// a handle (AddHandles), so that a corpus is cut into pieces once: after Learn, a Translator turns handles
// into the IDs Encode would have produced. The zero value is not usable; call NewCounter. Not safe for
// concurrent use.
type Counter struct {
	handles map[string]uint32 // multi-byte piece → handle-256
	pieces  []byte            // the pieces, end to end
	ends    []uint32          // pieces[ends[h-1]:ends[h]] is piece h (handle h+256)
	counts  []uint64
}

// Handles below 256 are single bytes (a one-byte piece, or a byte that is not valid UTF-8); handle 256+h is
// the h-th distinct multi-byte piece counted.
const firstHandle = 256

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{handles: make(map[string]uint32)} }

// Add counts the pieces of text.
func (c *Counter) Add(text []byte) {
	for len(text) > 0 {
		n, valid := nextPiece(text)
		if valid && n > 1 {
			c.counts[c.handle(text[:n])]++
		}
		text = text[n:]
	}
}

// AddHandles counts the pieces of text and appends their handles to dst.
func (c *Counter) AddHandles(dst []uint32, text []byte) []uint32 {
	for len(text) > 0 {
		n, valid := nextPiece(text)
		if valid && n > 1 {
			h := c.handle(text[:n])
			c.counts[h]++
			dst = append(dst, firstHandle+h)
		} else {
			dst = append(dst, uint32(text[0]))
		}
		text = text[n:]
	}
	return dst
}

func (c *Counter) handle(piece []byte) uint32 {
	if h, ok := c.handles[string(piece)]; ok {
		return h
	}
	h := uint32(len(c.counts))
	c.handles[string(piece)] = h
	c.pieces = append(c.pieces, piece...)
	c.ends = append(c.ends, uint32(len(c.pieces)))
	c.counts = append(c.counts, 0)
	return h
}

func (c *Counter) piece(h uint32) []byte {
	start := uint32(0)
	if h > 0 {
		start = c.ends[h-1]
	}
	return c.pieces[start:c.ends[h]]
}

// Translator turns a Counter's handles into the IDs of one tokenizer. It keeps the pieces, not the Counter's
// table of them, which can be dropped.
type Translator struct {
	pieces Counter  // only pieces and ends are set
	ids    []uint32 // per multi-byte handle: its vocabulary ID, or Separator when it falls back to bytes
}

// Translator returns the translation of c's handles into t's IDs.
func (c *Counter) Translator(t *Tokenizer) *Translator {
	tr := &Translator{pieces: Counter{pieces: c.pieces, ends: c.ends}, ids: make([]uint32, len(c.counts))}
	for h := range tr.ids {
		tr.ids[h] = t.lookup[string(c.piece(uint32(h)))] // 0 (Separator) when absent
	}
	return tr
}

// Append appends to dst the IDs of the text whose handles are given: exactly what Encode returns for it.
func (tr *Translator) Append(dst []uint32, handles []uint32) []uint32 {
	for _, h := range handles {
		if h < firstHandle {
			dst = append(dst, FirstByte+h)
			continue
		}
		if id := tr.ids[h-firstHandle]; id != Separator {
			dst = append(dst, id)
			continue
		}
		for _, b := range tr.pieces.piece(h - firstHandle) {
			dst = append(dst, FirstByte+uint32(b))
		}
	}
	return dst
}

// Learn returns the tokenizer whose vocabulary is the most frequent counted pieces, at most maxVocab IDs in
// all (reserved IDs included; maxVocab must be in [FirstPiece, MaxVocab]). Equal counts are ordered by
// their bytes, so the result depends only on the counts.
func (c *Counter) Learn(maxVocab int) (*Tokenizer, error) {
	if maxVocab < int(FirstPiece) || maxVocab > MaxVocab {
		return nil, fmt.Errorf("tokenize: vocabulary bound %d must be in [%d, %d]", maxVocab, FirstPiece, MaxVocab)
	}
	order := make([]uint32, len(c.counts))
	for h := range order {
		order[h] = uint32(h)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		if c.counts[a] != c.counts[b] {
			if c.counts[a] > c.counts[b] {
				return -1
			}
			return 1
		}
		return bytes.Compare(c.piece(a), c.piece(b))
	})
	keep := min(len(order), maxVocab-int(FirstPiece))
	pieces := make([][]byte, keep)
	for i := range pieces {
		pieces[i] = slices.Clone(c.piece(order[i]))
	}
	return fromPieces(pieces), nil
}

// FromPieces returns the tokenizer with the given vocabulary pieces, in ID order from FirstPiece. Each must
// be a piece the pre-tokenizer produces, longer than one byte, and unique.
func FromPieces(pieces [][]byte) (*Tokenizer, error) {
	if int(FirstPiece)+len(pieces) > MaxVocab {
		return nil, fmt.Errorf("%w: %d pieces is over the vocabulary limit of %d", ErrFormat, len(pieces), MaxVocab)
	}
	seen := make(map[string]struct{}, len(pieces))
	for i, p := range pieces {
		if err := checkPiece(p); err != nil {
			return nil, fmt.Errorf("%w: piece %d (ID %d): %v", ErrFormat, i, FirstPiece+uint32(i), err)
		}
		if _, dup := seen[string(p)]; dup {
			return nil, fmt.Errorf("%w: piece %d (ID %d) %q appears twice", ErrFormat, i, FirstPiece+uint32(i), p)
		}
		seen[string(p)] = struct{}{}
	}
	return fromPieces(pieces), nil
}

func checkPiece(p []byte) error {
	if len(p) < 2 || len(p) > MaxPieceBytes {
		return fmt.Errorf("length %d is outside [2, %d]", len(p), MaxPieceBytes)
	}
	if n, valid := nextPiece(p); !valid || n != len(p) {
		return fmt.Errorf("%q is not one piece under rules version %d", p, Version)
	}
	return nil
}

func fromPieces(pieces [][]byte) *Tokenizer {
	t := &Tokenizer{pieces: pieces, lookup: make(map[string]uint32, len(pieces))}
	for i, p := range pieces {
		t.lookup[string(p)] = FirstPiece + uint32(i)
	}
	t.tables = marshal(pieces)
	t.hash = sha256.Sum256(t.tables)
	return t
}

// The serialized tables, all integers little-endian:
//
//	magic     "SHTOKENS" (8 bytes)
//	version   u32  rules version (Version)
//	unicode   u8 length, then the bytes of unicode.Version
//	count     u32  number of pieces
//	pieces    count × (u8 length, bytes), in ID order from FirstPiece
const magic = "SHTOKENS"

func marshal(pieces [][]byte) []byte {
	size := len(magic) + 4 + 1 + len(unicode.Version) + 4
	for _, p := range pieces {
		size += 1 + len(p)
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = append(b, byte(len(unicode.Version)))
	b = append(b, unicode.Version...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pieces)))
	for _, p := range pieces {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// Parse reads tables written by Marshal. It refuses tables of another rules version or another Unicode
// version than this build's, naming both, since such a tokenizer could cut text differently.
func Parse(b []byte) (*Tokenizer, error) {
	data := b
	if len(b) < len(magic)+4+1 || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: missing %q header", ErrFormat, magic)
	}
	b = b[len(magic):]
	if v := binary.LittleEndian.Uint32(b); v != Version {
		return nil, fmt.Errorf("%w: rules version %d, this build has version %d", ErrFormat, v, Version)
	}
	b = b[4:]
	ul := int(b[0])
	b = b[1:]
	if len(b) < ul+4 {
		return nil, fmt.Errorf("%w: truncated in the Unicode version", ErrFormat)
	}
	if uv := string(b[:ul]); uv != unicode.Version {
		return nil, fmt.Errorf("%w: built with Unicode %s tables, this build has Unicode %s; rebuild the index", ErrFormat, uv, unicode.Version)
	}
	b = b[ul:]
	count := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(count) > MaxVocab-uint64(FirstPiece) || uint64(count)*3 > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d pieces cannot fit in %d bytes", ErrFormat, count, len(b))
	}
	pieces := make([][]byte, count)
	for i := range pieces {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, fmt.Errorf("%w: truncated in piece %d of %d", ErrFormat, i, count)
		}
		l := int(b[0])
		pieces[i] = slices.Clone(b[1 : 1+l])
		b = b[1+l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last piece", ErrFormat, len(b))
	}
	t, err := FromPieces(pieces)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(t.tables, data) {
		return nil, fmt.Errorf("%w: tables do not re-serialize to the same bytes", ErrFormat)
	}
	return t, nil
}

// Rune classes of the pre-tokenizer.
const (
	classOther = iota
	classLetter
	classNumber
	classSpace
)

// asciiClass classifies the ASCII bytes without a table lookup in package unicode.
var asciiClass = func() (c [128]uint8) {
	for i := range c {
		c[i] = runeClass(rune(i))
	}
	return c
}()

func runeClass(r rune) uint8 {
	switch {
	case unicode.IsLetter(r) || unicode.IsMark(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// decode returns the class and size of the rune at the start of b; valid is false for a byte that is not
// part of valid UTF-8 (size 1).
func decode(b []byte) (class uint8, size int, valid bool) {
	if c := b[0]; c < utf8.RuneSelf {
		return asciiClass[c], 1, true
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 {
		return classOther, 1, false
	}
	return runeClass(r), size, true
}

// nextPiece returns the length of the first piece of text (non-empty) and whether it is valid UTF-8.
func nextPiece(text []byte) (n int, valid bool) {
	class, size, valid := decode(text)
	if !valid {
		return 1, false
	}
	start := 0
	if text[0] == ' ' && len(text) > 1 {
		// A single space leads a letter, number or other piece that follows it.
		next, _, ok := decode(text[1:])
		if ok && next != classSpace {
			start, class = 1, next
			_, size, _ = decode(text[1:])
		}
	}
	n = start + size
	switch class {
	case classOther:
		return n, true
	case classSpace:
		// A run of whitespace; a final space U+0020 before a non-space is left for the next piece.
		for n < len(text) {
			c, s, ok := decode(text[n:])
			if !ok || c != classSpace {
				if ok && text[n-1] == ' ' && n > 1 {
					n--
				}
				break
			}
			if n+s > MaxPieceBytes {
				break
			}
			n += s
		}
		return n, true
	}
	// Letters or numbers: extend while the class holds and the piece fits.
	for n < len(text) {
		c, s, ok := decode(text[n:])
		if !ok || c != class || n+s > MaxPieceBytes {
			break
		}
		n += s
	}
	return n, true
}
