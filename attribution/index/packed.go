package index

import "encoding/binary"

// packed is a read-only array of fixed-width unsigned integers (width <= 57 bits) laid out as in sa.bin,
// followed by at least 8 bytes of padding.
type packed struct {
	data  []byte
	width uint
	mask  uint64
}

func newPacked(data []byte, width uint) packed {
	return packed{data: data, width: width, mask: 1<<width - 1}
}

// get returns entry i. i must be below the number of entries; the padding makes the 8-byte load safe.
func (p packed) get(i int) int {
	bit := uint(i) * p.width
	return int(binary.LittleEndian.Uint64(p.data[bit>>3:]) >> (bit & 7) & p.mask)
}

// packedSize is the size in bytes of n entries of width bits, padding included.
func packedSize(n int, width uint) int64 {
	return (int64(n)*int64(width)+7)/8 + 8
}
