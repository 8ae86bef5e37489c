package corpus

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shouldersnet/shoulders/attribution/index"
)

// GCIDEDir is where Debian's dict-gcide package installs the dictionary.
const GCIDEDir = "/usr/share/dictd"

// GCIDEPackage is the Debian package that provides it.
const GCIDEPackage = "dict-gcide"

// GCIDE reads the Collaborative International Dictionary of English (gcide.index and gcide.dict.dz in dir)
// as records: one per dictionary entry, its ID "gcide:<headword>" (with "#2", "#3"… for later entries of
// the same headword), and its contributor "gcide-<letter>" after the first letter of the headword
// ("gcide-other" for headwords that do not start with a–z). The "00-…" metadata entries are skipped.
// Entries are in index order, which is alphabetical. limit > 0 stops after that many records.
func GCIDE(dir string, limit int) ([]index.Record, error) {
	indexPath := filepath.Join(dir, "gcide.index")
	dictPath := filepath.Join(dir, "gcide.dict.dz")
	f, err := os.Open(dictPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (install the Debian package %s)", ErrInput, err, GCIDEPackage)
	}
	defer f.Close()
	z, err := gzip.NewReader(f) // dictzip is gzip with an extra header field
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, dictPath, err)
	}
	dict, err := io.ReadAll(io.LimitReader(z, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, dictPath, err)
	}
	if len(dict) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes uncompressed", ErrInput, dictPath, MaxFileBytes)
	}

	idx, err := os.Open(indexPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (install the Debian package %s)", ErrInput, err, GCIDEPackage)
	}
	defer idx.Close()
	var out []index.Record
	seenEntry := map[[2]uint64]bool{}
	seenID := map[string]int{}
	s := bufio.NewScanner(idx)
	line := 0
	for s.Scan() {
		line++
		fields := strings.Split(s.Text(), "\t")
		if len(fields) != 3 {
			return nil, fmt.Errorf("%w: %s:%d: want 3 tab-separated fields, got %d", ErrInput, indexPath, line, len(fields))
		}
		head := fields[0]
		if strings.HasPrefix(head, "00-") {
			continue
		}
		off, err1 := dictB64(fields[1])
		n, err2 := dictB64(fields[2])
		if err1 != nil || err2 != nil || off+n > uint64(len(dict)) || n == 0 {
			return nil, fmt.Errorf("%w: %s:%d: entry %q at %q+%q is outside the %d-byte dictionary", ErrInput, indexPath, line, head, fields[1], fields[2], len(dict))
		}
		if seenEntry[[2]uint64{off, n}] {
			continue // another headword for an entry already read
		}
		seenEntry[[2]uint64{off, n}] = true
		id := "gcide:" + head
		seenID[id]++
		if k := seenID[id]; k > 1 {
			id = fmt.Sprintf("%s#%d", id, k)
		}
		if len(id) > index.MaxIDBytes {
			id = id[:index.MaxIDBytes]
		}
		contributor := "gcide-other"
		if c := strings.ToLower(head[:1]); c >= "a" && c <= "z" {
			contributor = "gcide-" + c
		}
		out = append(out, index.Record{ID: id, Contributor: contributor, Text: dict[off : off+n : off+n]})
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, indexPath, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s lists no entries", ErrInput, indexPath)
	}
	return out, nil
}

// dictB64 decodes dictd's base-64 numbers (most significant digit first).
func dictB64(s string) (uint64, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(alphabet, s[i])
		if d < 0 {
			return 0, fmt.Errorf("bad digit %q", s[i])
		}
		v = v*64 + uint64(d)
	}
	return v, nil
}
