package index

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// records is the table from stream offset to record.
type records struct {
	starts       []uint32 // stream offset of each record's first token, strictly increasing
	contrib      []uint32 // index into contributors
	ids          []string
	contributors []string
}

const recordsMagic = "SHRECORD"

func (r *records) marshal() []byte {
	size := len(recordsMagic) + 8 + 8*len(r.starts)
	for _, c := range r.contributors {
		size += 2 + len(c)
	}
	for _, id := range r.ids {
		size += 2 + len(id)
	}
	b := make([]byte, 0, size)
	b = append(b, recordsMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.contributors)))
	for _, c := range r.contributors {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c)))
		b = append(b, c...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.starts)))
	for _, s := range r.starts {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	for _, c := range r.contrib {
		b = binary.LittleEndian.AppendUint32(b, c)
	}
	for _, id := range r.ids {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(id)))
		b = append(b, id...)
	}
	return b
}

// parseRecords reads records.bin for a stream of n tokens and checks everything a query relies on: starts
// strictly increasing from 0 with room for a separator after each record, contributor indexes in range,
// IDs unique and valid.
func parseRecords(b []byte, n int) (records, error) {
	var r records
	fail := func(format string, args ...any) (records, error) {
		return records{}, fmt.Errorf("records.bin: "+format, args...)
	}
	if len(b) < len(recordsMagic)+4 || string(b[:len(recordsMagic)]) != recordsMagic {
		return fail("missing %q header", recordsMagic)
	}
	b = b[len(recordsMagic):]
	u32 := func(what string) (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	str := func(limit int) (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		l := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+l || l == 0 || l > limit || !utf8.Valid(b[2:2+l]) {
			return "", false
		}
		s := string(b[2 : 2+l])
		b = b[2+l:]
		return s, true
	}
	c, ok := u32("contributor count")
	if !ok || uint64(c)*3 > uint64(len(b)) {
		return fail("contributor count does not fit the file")
	}
	r.contributors = make([]string, c)
	for i := range r.contributors {
		if r.contributors[i], ok = str(MaxContributorBytes); !ok {
			return fail("contributor %d of %d is truncated, empty, too long or not UTF-8", i, c)
		}
	}
	count, ok := u32("record count")
	if !ok || count == 0 || uint64(count)*11 > uint64(len(b)) {
		return fail("record count %d does not fit the file", count)
	}
	r.starts = make([]uint32, count)
	for i := range r.starts {
		r.starts[i], _ = u32("start")
	}
	r.contrib = make([]uint32, count)
	for i := range r.contrib {
		r.contrib[i], _ = u32("contributor")
		if r.contrib[i] >= c {
			return fail("record %d has contributor index %d of %d", i, r.contrib[i], c)
		}
	}
	r.ids = make([]string, count)
	seen := make(map[string]struct{}, count)
	for i := range r.ids {
		if r.ids[i], ok = str(MaxIDBytes); !ok {
			return fail("ID of record %d is truncated, empty, too long or not UTF-8", i)
		}
		if _, dup := seen[r.ids[i]]; dup {
			return fail("ID %q appears twice", r.ids[i])
		}
		seen[r.ids[i]] = struct{}{}
	}
	if len(b) != 0 {
		return fail("%d bytes after the last record", len(b))
	}
	// Each record holds at least one token and is followed by a separator; the last separator ends the stream.
	if r.starts[0] != 0 {
		return fail("the first record starts at %d, not 0", r.starts[0])
	}
	for i := 1; i < len(r.starts); i++ {
		if r.starts[i] < r.starts[i-1]+2 {
			return fail("record %d starts at %d, before the end of record %d", i, r.starts[i], i-1)
		}
	}
	if last := uint64(r.starts[count-1]); last+2 > uint64(n) {
		return fail("the last record starts at %d, past the stream of %d tokens", last, n)
	}
	if uint64(count) > uint64(n) {
		return fail("%d records for %d tokens", count, n)
	}
	return r, nil
}

// find returns the record holding stream position pos (0 <= pos < stream length; a separator belongs to
// the record it ends) and pos's offset in it.
func (r *records) find(pos int) (rec, offset int) {
	// The last start <= pos.
	i, found := slices.BinarySearch(r.starts, uint32(pos))
	if !found {
		i--
	}
	if i < 0 {
		i = 0
	}
	return i, pos - int(r.starts[i])
}
