package attribution

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLog2Q16(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 1))
	xs := []uint64{1, 2, 3, 4, 5, 7, 1000, 1 << 20, 1<<20 + 1, 123456789, 1<<62 + 12345, math.MaxUint64}
	for range 1000 {
		xs = append(xs, rnd.Uint64()>>rnd.IntN(64))
	}
	for _, x := range xs {
		if x == 0 {
			continue
		}
		got := float64(log2Q16(x)) / 65536
		want := math.Log2(float64(x))
		if d := want - got; d < -1e-9 || d > 2.0/65536 {
			t.Fatalf("log2Q16(%d) = %v, log2 = %v", x, got, want)
		}
	}
	// Monotone, which the surprise of a token relies on.
	prev := uint64(0)
	for x := uint64(1); x < 100000; x++ {
		v := log2Q16(x)
		if v < prev {
			t.Fatalf("log2Q16(%d) = %d < log2Q16(%d) = %d", x, v, x-1, prev)
		}
		prev = v
	}
}

func TestExp2NegQ32(t *testing.T) {
	for x := uint64(0); x < 40<<16; x += 977 {
		got := float64(exp2NegQ32(x)) / (1 << 32)
		want := math.Exp2(-float64(x) / 65536)
		if x>>16 >= 32 {
			want = 0
		}
		if d := math.Abs(got - want); d > 2.0/(1<<32) {
			t.Fatalf("exp2NegQ32(%d/65536) = %v, want %v", x, got, want)
		}
	}
	if exp2NegQ32(0) != 1<<32 {
		t.Fatalf("2^0 = %d, want %d", exp2NegQ32(0), uint64(1)<<32)
	}
}
