package consensus

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func setOf(t *testing.T, powers ...int64) *ValidatorSet {
	keys := testKeys(len(powers))
	vals := make([]Validator, len(powers))
	for i, p := range powers {
		vals[i] = Validator{PubKey: keys[i].PublicKey(), Power: p}
	}
	s, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestProposerStakeWeighted checks the round robin: over each window of total-power heights every
// validator proposes exactly as often as its power.
func TestProposerStakeWeighted(t *testing.T) {
	for _, powers := range [][]int64{{1, 1, 1, 1}, {5, 1, 1, 3}, {1, 2, 3, 4, 5, 6, 7}, {10, 1}} {
		s := setOf(t, powers...)
		total := s.TotalPower()
		count := make([]int64, len(powers))
		for h := int64(0); h < 5*total; h++ {
			p := s.Proposer(0)
			if h >= total { // count the windows after the first, where priorities have settled
				count[p]++
			}
			s = s.Next()
		}
		for i, c := range count {
			if c != 4*powers[i] {
				t.Errorf("powers %v: validator %d proposed %d times in 4 windows, want %d", powers, i, c, 4*powers[i])
			}
		}
	}
}

// TestProposerRounds checks that round r of height h has the proposer of round 0 of height h+r, which the
// core relies on to attribute next-height proposals.
func TestProposerRounds(t *testing.T) {
	s := setOf(t, 3, 1, 4, 1, 5)
	next := s
	for r := int32(0); r < 20; r++ {
		if a, b := s.Proposer(r), next.Proposer(0); a != b {
			t.Fatalf("round %d: %d, but height+%d round 0: %d", r, a, r, b)
		}
		if a, b := s.Proposer(r+1), s.Next().Proposer(r); a != b {
			t.Fatalf("round %d+1: %d, next height round %d: %d", r, a, r, b)
		}
		next = next.Next()
	}
}

// TestPrioritiesBounded runs random sets for many heights: priorities stay within [-total, total] and sum
// to zero, so they never overflow.
func TestPrioritiesBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		n := 1 + rng.IntN(20)
		powers := make([]int64, n)
		for i := range powers {
			powers[i] = 1 + rng.Int64N(1<<40)
		}
		s := setOf(t, powers...)
		for h := 0; h < 500; h++ {
			s = s.Next()
			var sum int64
			for _, p := range s.prio {
				if p < -s.total || p > s.total {
					t.Fatalf("priority %d outside ±%d", p, s.total)
				}
				sum += p
			}
			if sum != 0 {
				t.Fatalf("priorities sum to %d", sum)
			}
		}
		b, _ := s.MarshalBinary()
		back, err := UnmarshalValidatorSet(b)
		if err != nil || back.Proposer(3) != s.Proposer(3) {
			t.Fatalf("round trip: %v", err)
		}
	}
}

func TestValidatorSetRejects(t *testing.T) {
	keys := testKeys(2)
	for name, vals := range map[string][]Validator{
		"empty":          nil,
		"zero power":     {{PubKey: keys[0].PublicKey(), Power: 0}},
		"negative power": {{PubKey: keys[0].PublicKey(), Power: -1}},
		"duplicate key":  {{PubKey: keys[0].PublicKey(), Power: 1}, {PubKey: keys[0].PublicKey(), Power: 1}},
		"total overflow": {{PubKey: keys[0].PublicKey(), Power: MaxTotalPower}, {PubKey: keys[1].PublicKey(), Power: 1}},
	} {
		if _, err := NewValidatorSet(vals); !errors.Is(err, ErrValidatorSet) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestQuorumArithmetic(t *testing.T) {
	s := setOf(t, 1, 1, 1, 1)
	if s.Quorum(2) || !s.Quorum(3) || s.OneThird(1) || !s.OneThird(2) {
		t.Fatal("4 equal validators: quorum is 3, one third is 2")
	}
	s = setOf(t, 1, 1, 1)
	if s.Quorum(2) || !s.Quorum(3) || !s.OneThird(2) || s.OneThird(1) {
		t.Fatal("3 equal validators: quorum is 3 (more than 2/3), one third is 2")
	}
}
