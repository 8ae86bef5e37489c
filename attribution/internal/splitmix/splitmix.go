// Package splitmix is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// 2014): the generator behind every sampled token of the ∞-gram model and every synthetic corpus. Its
// output is defined by its seed alone, on every machine and Go version, which math/rand does not promise
// across releases for its global functions.
package splitmix

import "math/bits"

// Rand is a SplitMix64 generator. The zero value is the generator seeded with 0. Not safe for concurrent use.
type Rand struct{ s uint64 }

// New returns the generator seeded with seed.
func New(seed uint64) *Rand { return &Rand{s: seed} }

// Uint64 returns the next 64 random bits.
func (r *Rand) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Below returns a uniform integer in [0, n), n > 0, by Lemire's multiply-and-reject method.
func (r *Rand) Below(n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}
