// Package corpus turns inputs into the records of an attribution index: files, lines, JSON lines, the GCIDE
// dictionary installed by Debian's dict-gcide package, and a synthetic Zipf corpus for benchmarks.
//
// It owns reading and validating those inputs — every error names the file and line — and nothing else: it
// builds no index. Readers hold the whole corpus in memory, as index.Build needs it; an input is bounded by
// MaxFileBytes per file and MaxLineBytes per line.
package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/shouldersnet/shoulders/attribution/index"
)

// Limits on inputs.
const (
	MaxFileBytes = 1 << 31
	MaxLineBytes = 64 << 20
)

// ErrInput reports an input that cannot become records.
var ErrInput = errors.New("corpus: bad input")

// Files reads each file as one record whose ID is its path.
func Files(paths []string, contributor string) ([]index.Record, error) {
	var out []index.Record
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: %s is empty", ErrInput, p)
		}
		out = append(out, index.Record{ID: p, Contributor: contributor, Text: b})
	}
	return out, nil
}

// Lines reads each non-empty line of each file as one record whose ID is "path:line". Line ends ("\n" or
// "\r\n") are not part of the record.
func Lines(paths []string, contributor string) ([]index.Record, error) {
	var out []index.Record
	for _, p := range paths {
		err := eachLine(p, func(n int, line []byte) error {
			if len(bytes.TrimSpace(line)) > 0 {
				out = append(out, index.Record{ID: fmt.Sprintf("%s:%d", p, n), Contributor: contributor, Text: bytes.Clone(line)})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// JSONLine is one line of a JSON-lines corpus.
type JSONLine struct {
	ID          string `json:"id"`          // optional: "path:line" when absent
	Contributor string `json:"contributor"` // optional when a default contributor is given
	Text        string `json:"text"`
}

// JSONL reads one record per non-blank line of each file, each a JSON object with a "text" field and
// optional "id" and "contributor" fields; defaultContributor applies where "contributor" is absent.
func JSONL(paths []string, defaultContributor string) ([]index.Record, error) {
	var out []index.Record
	for _, p := range paths {
		err := eachLine(p, func(n int, line []byte) error {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			var l JSONLine
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				return fmt.Errorf("%w: %s:%d: %v", ErrInput, p, n, err)
			}
			if l.Text == "" {
				return fmt.Errorf("%w: %s:%d: missing or empty \"text\"", ErrInput, p, n)
			}
			if l.Contributor == "" {
				l.Contributor = defaultContributor
			}
			if l.Contributor == "" {
				return fmt.Errorf("%w: %s:%d: missing \"contributor\" (or pass a default contributor)", ErrInput, p, n)
			}
			if l.ID == "" {
				l.ID = fmt.Sprintf("%s:%d", p, n)
			}
			out = append(out, index.Record{ID: l.ID, Contributor: l.Contributor, Text: []byte(l.Text)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, p, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrInput, p, MaxFileBytes)
	}
	return b, nil
}

// eachLine calls f with each line of the file (numbered from 1, line end removed).
func eachLine(p string, f func(n int, line []byte) error) error {
	file, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer file.Close()
	s := bufio.NewScanner(file)
	s.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	n := 0
	for s.Scan() {
		n++
		if err := f(n, bytes.TrimSuffix(s.Bytes(), []byte("\r"))); err != nil {
			return err
		}
	}
	if err := s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: %s:%d: line longer than %d bytes", ErrInput, p, n+1, MaxLineBytes)
		}
		return fmt.Errorf("%w: %s: %v", ErrInput, p, err)
	}
	return nil
}
