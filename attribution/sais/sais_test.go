package sais

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// naive sorts suffixes by direct comparison: quadratic, only for checking small texts.
func naive[T Symbol](text []T) []int32 {
	sa := make([]int32, len(text))
	for i := range sa {
		sa[i] = int32(i)
	}
	slices.SortFunc(sa, func(a, b int32) int { return slices.Compare(text[a:], text[b:]) })
	return sa
}

func check[T Symbol](t *testing.T, name string, text []T, sigma int) {
	t.Helper()
	sa := make([]int32, len(text))
	for i := range sa {
		sa[i] = int32(i*7 - 3) // Sort must not depend on what sa held
	}
	if err := Sort(text, sa, sigma); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	want := naive(text)
	if !slices.Equal(sa, want) {
		n := min(len(text), 40)
		t.Fatalf("%s (len %d, text[:%d]=%v): suffix array differs from a naive sort\n got %v\nwant %v",
			name, len(text), n, text[:n], sa[:min(len(sa), 40)], want[:min(len(want), 40)])
	}
}

func TestSortAdversarial(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 16, 63, 64, 65, 100, 1000, 4097} {
		rep := make([]uint16, n)
		for i := range rep {
			rep[i] = 7
		}
		check(t, "one symbol repeated", rep, 8)

		for _, period := range []int{2, 3, 5} {
			p := make([]uint16, n)
			for i := range p {
				p[i] = uint16(i % period)
			}
			check(t, "periodic", p, period)
			q := make([]uint16, n)
			for i := range q {
				q[i] = uint16(period - 1 - i%period)
			}
			check(t, "periodic descending", q, period)
		}

		inc := make([]uint32, n)
		dec := make([]uint32, n)
		for i := range inc {
			inc[i] = uint32(i)
			dec[i] = uint32(n - i)
		}
		check(t, "increasing", inc, n+1)
		check(t, "decreasing", dec, n+1)

		// "abaabab..." Fibonacci words have many equal LMS substrings and deep recursion.
		check(t, "fibonacci", fibonacci(n), 2)

		// A repetitive record with a little noise: the case a comparison sort goes quadratic on.
		rnd := rand.New(rand.NewPCG(uint64(n), 1))
		noisy := make([]uint16, n)
		for i := range noisy {
			noisy[i] = uint16(i % 3)
			if rnd.IntN(50) == 0 {
				noisy[i] = 3
			}
		}
		check(t, "period 3 with noise", noisy, 4)
	}
}

func fibonacci(n int) []uint8 {
	a, b := []uint8{0}, []uint8{0, 1}
	for len(b) < n {
		a, b = b, append(slices.Clone(b), a...)
	}
	return b[:n]
}

func TestSortRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		n := rnd.IntN(300)
		sigma := 1 + rnd.IntN(6)
		if iter%10 == 0 {
			sigma = 1 + rnd.IntN(1000)
		}
		text := make([]uint32, n)
		for i := range text {
			text[i] = uint32(rnd.IntN(sigma))
		}
		check(t, "random", text, sigma)
	}
}

// TestSortLargeRepetitive checks a text long enough to recurse several levels, against the property that
// defines a suffix array (each suffix smaller than the next), which is linear to check for this text.
func TestSortLargeRepetitive(t *testing.T) {
	const n = 1 << 18
	text := make([]uint16, n)
	for i := range text {
		text[i] = uint16(i % 3)
	}
	text[n/2] = 5
	sa := make([]int32, n)
	if err := Sort(text, sa, 6); err != nil {
		t.Fatal(err)
	}
	if err := CheckSorted(text, sa); err != nil {
		t.Fatal(err)
	}
}

// TestSortTokenLike checks texts shaped like the attribution index's token streams: a large alphabet with
// Zipf frequencies, where most LMS substrings are unique and the recursion sorts a compacted text, several
// levels deep.
func TestSortTokenLike(t *testing.T) {
	for _, sigma := range []int{300, 5000, 1 << 16} {
		text := zipfText(1<<18, sigma)
		sa := make([]int32, len(text))
		if err := Sort(text, sa, sigma); err != nil {
			t.Fatal(err)
		}
		if err := CheckSorted(text, sa); err != nil {
			t.Fatalf("sigma %d: %v", sigma, err)
		}
		check(t, "zipf, short", text[:3000], sigma)
	}
}

// TestSortLongLMSSubstrings checks LMS substrings longer than the ones whose codes carry a hash.
func TestSortLongLMSSubstrings(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var text []uint16
	for len(text) < 5000 {
		// A long rise and fall, sometimes repeated exactly, so that long substrings are equal.
		peak := 100 + rnd.IntN(200)
		if rnd.IntN(3) == 0 {
			peak = 150
		}
		for c := range peak {
			text = append(text, uint16(c))
		}
		for c := peak; c > 0; c-- {
			text = append(text, uint16(c))
		}
	}
	check(t, "long LMS substrings", text, 400)
}

func TestSortRejectsBadInput(t *testing.T) {
	if err := Sort([]uint16{1, 2, 9}, make([]int32, 3), 5); !errors.Is(err, ErrInput) {
		t.Fatalf("symbol outside the alphabet: got %v, want ErrInput", err)
	}
	if err := Sort([]uint16{1, 2}, make([]int32, 3), 5); !errors.Is(err, ErrInput) {
		t.Fatalf("length mismatch: got %v, want ErrInput", err)
	}
	if err := Sort([]uint16{1}, make([]int32, 1), 0); !errors.Is(err, ErrInput) {
		t.Fatalf("empty alphabet: got %v, want ErrInput", err)
	}
}

func TestCheckSortedFindsDisorder(t *testing.T) {
	text := []uint8{2, 1, 2, 1, 0}
	sa := naive(text)
	if err := CheckSorted(text, sa); err != nil {
		t.Fatalf("correct suffix array rejected: %v", err)
	}
	sa[1], sa[2] = sa[2], sa[1]
	if err := CheckSorted(text, sa); err == nil {
		t.Fatal("swapped entries not detected")
	}
	sa[1] = sa[2]
	if err := CheckSorted(text, sa); err == nil {
		t.Fatal("repeated entry not detected")
	}
}

func FuzzSort(f *testing.F) {
	f.Add([]byte("banana"))
	f.Add([]byte("mississippi"))
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	f.Add([]byte("abcabcabcabcabcabcabcabcabc"))
	f.Add([]byte("\x03abcabcabcabcabcabcabcabcabcab"))
	f.Add([]byte("\x02abaababaabaababaababaabaababaabab"))
	f.Fuzz(func(t *testing.T, text []byte) {
		if len(text) > 4096 {
			return
		}
		check(t, "fuzz", text, 256)
		if len(text) == 0 {
			return
		}
		// The first byte picks a small alphabet for the rest, as 16-bit symbols: small alphabets give
		// many equal LMS substrings and deep recursion.
		sigma := 1 + int(text[0])%8
		small := make([]uint16, len(text)-1)
		for i, c := range text[1:] {
			small[i] = uint16(int(c) % sigma)
		}
		check(t, "fuzz, small alphabet", small, sigma)
	})
}
