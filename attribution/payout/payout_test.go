package payout

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func randomInput(rnd *rand.Rand) Input {
	// Basis points: three random cuts of 10,000.
	cuts := []uint32{uint32(rnd.IntN(TotalBP + 1)), uint32(rnd.IntN(TotalBP + 1)), uint32(rnd.IntN(TotalBP + 1))}
	slices.Sort(cuts)
	in := Input{
		Fee: rnd.Uint64N(1 << uint(rnd.IntN(64))),
		Shares: Shares{
			WorkerBP:       cuts[0],
			ModelOwnerBP:   cuts[1] - cuts[0],
			ContributorsBP: cuts[2] - cuts[1],
			ValidatorsBP:   TotalBP - cuts[2],
		},
		Worker:     "worker",
		ModelOwner: "owner",
		Unclaimed:  "requester",
	}
	if rnd.IntN(8) == 0 {
		in.Fee = math.MaxUint64 - rnd.Uint64N(10)
	}
	if rnd.IntN(5) == 0 {
		in.ModelOwner = in.Worker // one account, two roles
	}
	for i := range rnd.IntN(12) {
		name := fmt.Sprintf("contrib-%02d", i)
		if rnd.IntN(6) == 0 {
			name = in.Worker // the worker also contributed data
		}
		if slices.ContainsFunc(in.Contributors, func(w Weight) bool { return w.Account == name }) {
			continue
		}
		in.Contributors = append(in.Contributors, Weight{name, rnd.Uint64N(1 << uint(rnd.IntN(64)))})
	}
	for i := range rnd.IntN(5) {
		in.Validators = append(in.Validators, Weight{fmt.Sprintf("val-%d", i), rnd.Uint64N(1000)})
	}
	return in
}

func split(t *testing.T, in Input) []Payout {
	t.Helper()
	out, err := Split(in)
	if err != nil {
		t.Fatalf("Split(%+v): %v", in, err)
	}
	return out
}

func amountOf(out []Payout, account string) uint64 {
	for _, p := range out {
		if p.Account == account {
			return p.Amount
		}
	}
	return 0
}

func TestSplitProperties(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		in := randomInput(rnd)
		out := split(t, in)

		// Sums exactly, each account once, ordered, no zero entries.
		var sum uint64
		for i, p := range out {
			if p.Amount == 0 || p.Amount > in.Fee {
				t.Fatalf("iteration %d: amount %d for %s of fee %d", iter, p.Amount, p.Account, in.Fee)
			}
			if i > 0 && out[i-1].Account >= p.Account {
				t.Fatalf("iteration %d: payouts not ordered by account: %v", iter, out)
			}
			var carry uint64
			sum, carry = addCarry(sum, p.Amount)
			if carry != 0 {
				t.Fatalf("iteration %d: amounts overflow", iter)
			}
		}
		if sum != in.Fee {
			t.Fatalf("iteration %d: amounts sum to %d, fee %d: %v", iter, sum, in.Fee, out)
		}

		// Stable under reordering of the inputs.
		shuffled := in
		shuffled.Contributors = slices.Clone(in.Contributors)
		shuffled.Validators = slices.Clone(in.Validators)
		rnd.Shuffle(len(shuffled.Contributors), func(i, j int) {
			shuffled.Contributors[i], shuffled.Contributors[j] = shuffled.Contributors[j], shuffled.Contributors[i]
		})
		rnd.Shuffle(len(shuffled.Validators), func(i, j int) {
			shuffled.Validators[i], shuffled.Validators[j] = shuffled.Validators[j], shuffled.Validators[i]
		})
		if again := split(t, shuffled); !slices.Equal(again, out) {
			t.Fatalf("iteration %d: reordering the inputs changed the split:\n%v\n%v", iter, out, again)
		}

		// Monotone in weight: raising one contributor's weight never lowers its amount.
		if len(in.Contributors) > 0 {
			i := rnd.IntN(len(in.Contributors))
			more := in
			more.Contributors = slices.Clone(in.Contributors)
			more.Contributors[i].Weight += rnd.Uint64N(1 << uint(rnd.IntN(40)))
			if more.Contributors[i].Weight < in.Contributors[i].Weight {
				continue // wrapped around
			}
			acct := in.Contributors[i].Account
			if before, after := amountOf(out, acct), amountOf(split(t, more), acct); after < before {
				t.Fatalf("iteration %d: raising %s's weight lowered its amount from %d to %d", iter, acct, before, after)
			}
		}

		// Between contributors with no other role, more weight means at least as much money.
		for _, a := range in.Contributors {
			for _, b := range in.Contributors {
				if a.Weight > b.Weight && a.Account != in.Worker && b.Account != in.Worker &&
					amountOf(out, a.Account) < amountOf(out, b.Account) {
					t.Fatalf("iteration %d: %v has more weight than %v but less money", iter, a, b)
				}
			}
		}
	}
}

func addCarry(a, b uint64) (uint64, uint64) {
	s := a + b
	if s < a {
		return s, 1
	}
	return s, 0
}

func TestSplitExample(t *testing.T) {
	in := Input{
		Fee:          1000,
		Shares:       Shares{WorkerBP: 5000, ModelOwnerBP: 2000, ContributorsBP: 2500, ValidatorsBP: 500},
		Worker:       "w",
		ModelOwner:   "m",
		Contributors: []Weight{{"alice", 666_667}, {"bob", 333_333}},
		Validators:   []Weight{{"v1", 1}, {"v2", 1}, {"v3", 1}},
	}
	got := split(t, in)
	// Exact: alice 166.66675, bob 83.33325, v1..v3 16.666…; floors sum to 997; the 3 units left go to the
	// largest remainders: alice (.66675), then v1, v2 (.666…, ties by account) ahead of v3 and bob.
	want := []Payout{{"alice", 167}, {"bob", 83}, {"m", 200}, {"v1", 17}, {"v2", 17}, {"v3", 16}, {"w", 500}}
	if !slices.Equal(got, want) {
		t.Fatalf("split = %v, want %v", got, want)
	}
}

func TestSplitUnclaimedGroups(t *testing.T) {
	in := Input{
		Fee:       100,
		Shares:    Shares{WorkerBP: 6000, ContributorsBP: 3000, ValidatorsBP: 1000},
		Worker:    "w",
		Unclaimed: "requester",
	}
	got := split(t, in)
	want := []Payout{{"requester", 40}, {"w", 60}}
	if !slices.Equal(got, want) {
		t.Fatalf("no contributors or validators: %v, want %v", got, want)
	}
	in.Unclaimed = ""
	if _, err := Split(in); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "unclaimed") {
		t.Fatalf("missing unclaimed account: %v", err)
	}
}

func TestSplitRejectsBadInputNamingTheField(t *testing.T) {
	good := Input{Fee: 10, Shares: Shares{WorkerBP: 10000}, Worker: "w"}
	cases := map[string]func(in *Input){
		"shares":      func(in *Input) { in.Shares.WorkerBP = 9999 },
		"worker":      func(in *Input) { in.Worker = "" },
		"model_owner": func(in *Input) { in.Shares = Shares{WorkerBP: 5000, ModelOwnerBP: 5000} },
		"contributors[1].account": func(in *Input) {
			in.Contributors = []Weight{{"a", 1}, {"", 1}}
		},
		"contributors[2].account \"a\" repeats": func(in *Input) {
			in.Contributors = []Weight{{"a", 1}, {"b", 1}, {"a", 2}}
		},
		"validators has":      func(in *Input) { in.Validators = make([]Weight, MaxRecipients+1) },
		"worker is 257 bytes": func(in *Input) { in.Worker = strings.Repeat("w", 257) },
	}
	for field, f := range cases {
		in := good
		f(&in)
		_, err := Split(in)
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
	if _, err := Split(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(uint64(1000), uint32(5000), uint32(2000), uint32(2500), uint64(3), uint64(5), uint64(0))
	f.Add(uint64(math.MaxUint64), uint32(1), uint32(1), uint32(9997), uint64(math.MaxUint64), uint64(1), uint64(7))
	f.Fuzz(func(t *testing.T, fee uint64, wbp, mbp, cbp uint32, w1, w2, v uint64) {
		if uint64(wbp)+uint64(mbp)+uint64(cbp) > TotalBP {
			return
		}
		in := Input{
			Fee:          fee,
			Shares:       Shares{wbp, mbp, cbp, TotalBP - wbp - mbp - cbp},
			Worker:       "w",
			ModelOwner:   "m",
			Contributors: []Weight{{"a", w1}, {"b", w2}},
			Validators:   []Weight{{"v", v}},
			Unclaimed:    "r",
		}
		out := split(t, in)
		var sum uint64
		for _, p := range out {
			sum += p.Amount
		}
		if sum != fee {
			t.Fatalf("sum %d, fee %d", sum, fee)
		}
	})
}
