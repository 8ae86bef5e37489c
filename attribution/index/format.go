package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"unicode"
	"unsafe"

	"github.com/shouldersnet/shoulders/attribution/tokenize"
)

// Format and FormatVersion name the directory format described in the package documentation.
const (
	Format        = "shoulders-attribution-index"
	FormatVersion = 1
	manifestName  = "manifest.json"
	maxManifest   = 1 << 20
)

// ErrIndex reports an index directory that is missing, truncated, corrupted or of another format.
var ErrIndex = errors.New("index: bad index directory")

const (
	partVocab = iota
	partTokens
	partSA
	partUnigram
	partRecords
	numParts
)

var partNames = [numParts]string{"vocab.bin", "tokens.bin", "sa.bin", "unigram.bin", "records.bin"}

// Manifest describes an index directory; it is manifest.json.
type Manifest struct {
	Format       string        `json:"format"`
	Version      int           `json:"version"`
	Tokens       int           `json:"tokens"` // stream length: text tokens plus one separator per record
	Records      int           `json:"records"`
	Contributors int           `json:"contributors"`
	TokenBytes   int           `json:"token_bytes"`
	SABits       int           `json:"sa_bits"`
	Tokenizer    TokenizerInfo `json:"tokenizer"`
	Parts        []Part        `json:"parts"`
	IndexHash    string        `json:"index_hash"`
}

// TokenizerInfo identifies the tokenizer an index was built with.
type TokenizerInfo struct {
	Version int    `json:"version"`
	Unicode string `json:"unicode"`
	Vocab   int    `json:"vocab"`
	Hash    string `json:"hash"`
}

// Part is one file of an index directory.
type Part struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bytes is the total size of the index files, manifest excluded.
func (m Manifest) Bytes() int64 {
	var total int64
	for _, p := range m.Parts {
		total += p.Size
	}
	return total
}

// hash computes the index hash from the manifest's other fields (see the package documentation).
func (m Manifest) hash() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", Format, m.Version)
	fmt.Fprintf(&b, "tokens %d\nrecords %d\ncontributors %d\ntoken_bytes %d\nsa_bits %d\n",
		m.Tokens, m.Records, m.Contributors, m.TokenBytes, m.SABits)
	fmt.Fprintf(&b, "tokenizer %d %s %d %s\n", m.Tokenizer.Version, m.Tokenizer.Unicode, m.Tokenizer.Vocab, m.Tokenizer.Hash)
	for _, p := range m.Parts {
		fmt.Fprintf(&b, "part %s %d %s\n", p.Name, p.Size, p.SHA256)
	}
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

func newManifest(ix *Index, parts [numParts][]byte) Manifest {
	m := Manifest{
		Format:       Format,
		Version:      FormatVersion,
		Tokens:       ix.n,
		Records:      len(ix.rec.starts),
		Contributors: len(ix.rec.contributors),
		TokenBytes:   ix.width(),
		SABits:       int(ix.sa.width),
		Tokenizer: TokenizerInfo{
			Version: tokenize.Version,
			Unicode: unicode.Version,
			Vocab:   ix.tok.Size(),
			Hash:    ix.tok.Hash(),
		},
	}
	for i, data := range parts {
		sum := sha256.Sum256(data)
		m.Parts = append(m.Parts, Part{Name: partNames[i], Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	m.IndexHash = m.hash()
	return m
}

// WriteDir writes the index to dir, which must not exist or be empty. The manifest is written last, through
// a temporary name, so a directory with a manifest is complete. Files are not fsynced: a directory cut short
// by a crash fails its hashes on Open and is rebuilt.
func (ix *Index) WriteDir(dir string) error {
	if ix.parts[partTokens] == nil {
		return fmt.Errorf("index: WriteDir: this index was opened from %s; copy that directory instead", ix.dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if len(entries) != 0 {
		return fmt.Errorf("index: %s is not empty (%d entries); choose a new directory", dir, len(entries))
	}
	for i, data := range ix.parts {
		if err := os.WriteFile(filepath.Join(dir, partNames[i]), data, 0o644); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	man, err := json.MarshalIndent(ix.man, "", "  ")
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	if err := os.WriteFile(tmp, append(man, '\n'), 0o644); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, manifestName)); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// Open maps the index in dir and checks it (see the package documentation). The caller must Close it.
func Open(dir string) (*Index, error) {
	if errBigEndian != nil {
		return nil, errBigEndian
	}
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	ix := &Index{man: man, dir: dir}
	ok := false
	defer func() {
		if !ok {
			ix.Close()
		}
	}()
	for i := range ix.parts {
		data, err := mapPart(dir, man.Parts[i])
		if data != nil {
			ix.maps = append(ix.maps, data)
		}
		if err != nil {
			return nil, err
		}
		ix.parts[i] = data
	}
	if err := ix.load(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIndex, dir, err)
	}
	// Opened indexes answer queries from the mapped files; nothing is rewritten from them.
	ix.parts = [numParts][]byte{}
	ok = true
	return ix, nil
}

func readManifest(dir string) (Manifest, error) {
	var m Manifest
	path := filepath.Join(dir, manifestName)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return m, fmt.Errorf("%w: %s has no %s (not an index, or its build did not finish)", ErrIndex, dir, manifestName)
		}
		return m, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if len(data) > maxManifest {
		return m, fmt.Errorf("%w: %s is over %d bytes", ErrIndex, path, maxManifest)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrIndex, path, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%w: %s: format %q, want %q", ErrIndex, path, m.Format, Format)
	}
	if m.Version != FormatVersion {
		return m, fmt.Errorf("%w: %s: format version %d, this build reads version %d", ErrIndex, path, m.Version, FormatVersion)
	}
	if len(m.Parts) != numParts {
		return m, fmt.Errorf("%w: %s lists %d files, want %d", ErrIndex, path, len(m.Parts), numParts)
	}
	for i, p := range m.Parts {
		if p.Name != partNames[i] {
			return m, fmt.Errorf("%w: %s: file %d is %q, want %q", ErrIndex, path, i, p.Name, partNames[i])
		}
	}
	if h := m.hash(); h != m.IndexHash {
		return m, fmt.Errorf("%w: %s: index_hash %s does not match its fields (%s): the manifest was edited or corrupted", ErrIndex, path, m.IndexHash, h)
	}
	return m, nil
}

// mapPart maps one file after checking its size, and checks its SHA-256.
func mapPart(dir string, p Part) ([]byte, error) {
	path := filepath.Join(dir, p.Name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if st.Size() != p.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, the manifest says %d (truncated or replaced)", ErrIndex, path, st.Size(), p.Size)
	}
	if p.Size == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrIndex, path)
	}
	data, err := mmapFile(f, p.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping %s: %v", ErrIndex, path, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
		return data, fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s (corrupted)", ErrIndex, path, got, p.SHA256)
	}
	return data, nil
}

// load interprets verified parts and checks their structure against the manifest.
func (ix *Index) load() error {
	m := ix.man
	tok, err := tokenize.Parse(ix.parts[partVocab])
	if err != nil {
		return fmt.Errorf("vocab.bin: %w", err)
	}
	if tok.Hash() != m.Tokenizer.Hash || tok.Size() != m.Tokenizer.Vocab || m.Tokenizer.Version != tokenize.Version || m.Tokenizer.Unicode != unicode.Version {
		return fmt.Errorf("vocab.bin does not match the manifest's tokenizer %+v", m.Tokenizer)
	}
	ix.tok = tok
	n := m.Tokens
	if n < 2 || n > MaxTokens {
		return fmt.Errorf("manifest: %d tokens is outside [2, %d]", n, MaxTokens)
	}
	ix.n = n
	wantWidth := 2
	if tok.Size() > tokenize.U16Vocab {
		wantWidth = 4
	}
	if m.TokenBytes != wantWidth {
		return fmt.Errorf("manifest: token_bytes %d, want %d for a vocabulary of %d", m.TokenBytes, wantWidth, tok.Size())
	}
	tokens := ix.parts[partTokens]
	if int64(len(tokens)) != int64(n)*int64(wantWidth) {
		return fmt.Errorf("tokens.bin is %d bytes for %d tokens of %d bytes", len(tokens), n, wantWidth)
	}
	if wantWidth == 2 {
		ix.t16 = unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(tokens))), n)
	} else {
		ix.t32 = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(tokens))), n)
	}
	width := uint(bits.Len(uint(n - 1)))
	if m.SABits != int(width) {
		return fmt.Errorf("manifest: sa_bits %d, want %d for %d tokens", m.SABits, width, n)
	}
	if int64(len(ix.parts[partSA])) != packedSize(n, width) {
		return fmt.Errorf("sa.bin is %d bytes, want %d", len(ix.parts[partSA]), packedSize(n, width))
	}
	ix.sa = newPacked(ix.parts[partSA], width)

	uni := ix.parts[partUnigram]
	if len(uni) != 4*(tok.Size()+1) {
		return fmt.Errorf("unigram.bin is %d bytes, want %d", len(uni), 4*(tok.Size()+1))
	}
	ix.unigram = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(uni))), tok.Size()+1)
	if ix.unigram[0] != 0 || int(ix.unigram[tok.Size()]) != n {
		return fmt.Errorf("unigram.bin runs from %d to %d, want 0 to %d", ix.unigram[0], ix.unigram[tok.Size()], n)
	}
	for t := 1; t < len(ix.unigram); t++ {
		if ix.unigram[t] < ix.unigram[t-1] {
			return fmt.Errorf("unigram.bin decreases at token %d", t)
		}
	}

	ix.rec, err = parseRecords(ix.parts[partRecords], n)
	if err != nil {
		return err
	}
	if len(ix.rec.starts) != m.Records || len(ix.rec.contributors) != m.Contributors {
		return fmt.Errorf("records.bin has %d records and %d contributors, the manifest says %d and %d",
			len(ix.rec.starts), len(ix.rec.contributors), m.Records, m.Contributors)
	}
	if seps := int(ix.unigram[tokenize.Separator+1]); seps != len(ix.rec.starts) {
		return fmt.Errorf("the stream has %d separators for %d records", seps, len(ix.rec.starts))
	}
	for i, s := range ix.rec.starts {
		if i > 0 && ix.token(int(s)-1) != tokenize.Separator {
			return fmt.Errorf("no separator before record %d", i)
		}
	}
	if ix.token(n-1) != tokenize.Separator {
		return fmt.Errorf("the stream does not end with a separator")
	}
	return nil
}

// Close unmaps the files of an opened index. The index must not be used afterwards.
func (ix *Index) Close() error {
	var first error
	for _, m := range ix.maps {
		if err := munmap(m); err != nil && first == nil {
			first = err
		}
	}
	ix.maps = nil
	ix.t16, ix.t32, ix.unigram = nil, nil, nil
	ix.sa = packed{}
	return first
}

func (ix *Index) width() int {
	if ix.t16 != nil {
		return 2
	}
	return 4
}

func (ix *Index) tokenBytes() []byte {
	if ix.t16 != nil {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ix.t16))), 2*len(ix.t16))
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ix.t32))), 4*len(ix.t32))
}

func u32Bytes(v []uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// The formats are little-endian and the stream is read in place, so Build and Open refuse big-endian hosts.
var errBigEndian = func() error {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return errors.New("index: big-endian hosts are not supported (the format is little-endian and read in place)")
	}
	return nil
}()
