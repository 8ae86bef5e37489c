package attribution

import (
	"math/big"
	"math/bits"
)

// Fixed-point arithmetic for everything that decides an output or a payout. Floating point is avoided even
// where it would be "deterministic enough": the compiler may fuse a multiply and an add on one architecture
// and not another, and a validator on a different machine must get the same bits.

// one is 1.0 in Q62 (62 fractional bits).
const one = uint64(1) << 62

// log2Q16 returns log2(x) in Q16 (16 fractional bits), x >= 1, rounded down, using integers only: the
// integer part is the bit length; each fractional bit comes from squaring the mantissa (in Q62) and
// checking whether it reached 2 (Knuth's shift-and-square method).
func log2Q16(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	e := bits.Len64(x) - 1
	var m uint64 // x / 2^e in [1, 2), Q62
	if e <= 62 {
		m = x << (62 - e)
	} else {
		m = x >> (e - 62)
	}
	r := uint64(e) << 16
	for i := 15; i >= 0; i-- {
		hi, lo := bits.Mul64(m, m)
		m = hi<<2 | lo>>62 // m*m in Q62, in [1, 4)
		if m >= 2*one {
			m >>= 1
			r |= 1 << i
		}
	}
	return r
}

// exp2Neg[k-1] is 2^(-2^-k) in Q62 for k = 1..16, computed once with integer square roots:
// 2^(-1/2) = sqrt(2^123)/2^62, and each next constant is the square root of the one before.
var exp2Neg = func() (c [16]uint64) {
	v := new(big.Int).Lsh(big.NewInt(1), 123)
	v.Sqrt(v)
	c[0] = v.Uint64()
	for k := 1; k < 16; k++ {
		v.SetUint64(c[k-1])
		v.Lsh(v, 62)
		v.Sqrt(v)
		c[k] = v.Uint64()
	}
	return c
}()

// exp2NegQ32 returns 2^(-x) in Q32 (so 1<<32 is 1.0) for x in Q16, rounded down; 0 once x >= 32.
func exp2NegQ32(x uint64) uint64 {
	whole, frac := x>>16, x&0xffff
	if whole >= 32 {
		return 0
	}
	v := one
	for k := 1; k <= 16; k++ {
		if frac&(1<<(16-k)) != 0 {
			hi, lo := bits.Mul64(v, exp2Neg[k-1])
			v = hi<<2 | lo>>62
		}
	}
	return (v >> 30) >> whole
}

// mulDiv returns a*b/c rounded down and the remainder, for c > 0 and a*b/c < 2^64.
func mulDiv(a, b, c uint64) (q, rem uint64) {
	hi, lo := bits.Mul64(a, b)
	return bits.Div64(hi, lo, c)
}
