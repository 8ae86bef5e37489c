// Package payout splits the fee of a paid job between the accounts that earned it: the worker, the model
// owner, the data contributors (by attribution weight) and the validators (by voting power).
//
// It owns one pure function, Split, written for the ledger's deterministic state machine: integers only
// (math/big inside, uint64 at the edges), no map iteration, no clock, no floating point, and every bad input
// rejected with an error that names the field. The same Input gives the same []Payout on every machine.
//
// # Rule
//
// Shares are basis points that sum to 10,000. An account's exact share of the fee is
//
//	fee × (worker_bp·[is worker] + model_owner_bp·[is model owner]
//	       + contributors_bp·w/W_contributors + validators_bp·v/W_validators) / 10,000
//
// summed over every role the account has (the worker may also be a contributor; it is paid once, for all
// its roles). Each account receives the floor of its exact share; the units left over (fewer than the number
// of accounts) go one each to the accounts with the largest fractional remainders, equal remainders to the
// smaller account string (largest-remainder rounding, Hamilton's method). So the amounts sum to exactly the
// fee, no account gets more than one unit away from its exact share, and raising one contributor's weight
// never lowers its amount.
//
// A group whose weights are all zero (or that is empty) cannot be paid; its basis points go to the
// Unclaimed account (for example the requester, as a refund), which must then be set.
package payout

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"unicode/utf8"
)

// TotalBP is what the basis points of Shares must sum to.
const TotalBP = 10_000

// Limits on an Input.
const (
	MaxAccountBytes = 256
	MaxRecipients   = 10_000 // per group
)

// ErrInput reports an Input that cannot be split; the message names the field.
var ErrInput = errors.New("payout: bad input")

// Shares are the parts of the fee, in basis points (1/10,000).
type Shares struct {
	WorkerBP       uint32 `json:"worker_bp"`
	ModelOwnerBP   uint32 `json:"model_owner_bp"`
	ContributorsBP uint32 `json:"contributors_bp"`
	ValidatorsBP   uint32 `json:"validators_bp"`
}

// Weight is one account's weight within a group.
type Weight struct {
	Account string `json:"account"`
	Weight  uint64 `json:"weight"`
}

// Input is what a settlement knows.
type Input struct {
	Fee          uint64   `json:"fee"`
	Shares       Shares   `json:"shares"`
	Worker       string   `json:"worker"`
	ModelOwner   string   `json:"model_owner"`
	Contributors []Weight `json:"contributors"` // e.g. attribution weight_ppm
	Validators   []Weight `json:"validators"`   // e.g. voting power
	Unclaimed    string   `json:"unclaimed"`    // receives the share of a group with no weight
}

// Payout is an amount credited to an account.
type Payout struct {
	Account string `json:"account"`
	Amount  uint64 `json:"amount"`
}

// Split divides in.Fee between the accounts of in by the rule above. It returns one Payout per account with
// a positive amount, ordered by account; the amounts sum to exactly in.Fee.
func Split(in Input) ([]Payout, error) {
	if err := validate(in); err != nil {
		return nil, err
	}
	wC, wV := total(in.Contributors), total(in.Validators)
	// Per-account numerators over the common denominator 10,000 · W_c · W_v; a group with no weight counts
	// as weight 1 in the denominator and hands its basis points to Unclaimed.
	dC, dV := new(big.Int).Set(wC), new(big.Int).Set(wV)
	fixed := map[string]uint64{}
	if wC.Sign() == 0 {
		dC.SetInt64(1)
		fixed[in.Unclaimed] += uint64(in.Shares.ContributorsBP)
	}
	if wV.Sign() == 0 {
		dV.SetInt64(1)
		fixed[in.Unclaimed] += uint64(in.Shares.ValidatorsBP)
	}
	if in.Shares.WorkerBP > 0 {
		fixed[in.Worker] += uint64(in.Shares.WorkerBP)
	}
	if in.Shares.ModelOwnerBP > 0 {
		fixed[in.ModelOwner] += uint64(in.Shares.ModelOwnerBP)
	}
	cdV := new(big.Int).Mul(dC, dV) // W_c · W_v
	num := map[string]*big.Int{}
	add := func(account string, v *big.Int) {
		if v.Sign() == 0 {
			return
		}
		if n, ok := num[account]; ok {
			n.Add(n, v)
		} else {
			num[account] = new(big.Int).Set(v)
		}
	}
	for account, bp := range fixed { // addition commutes: the iteration order cannot show
		add(account, new(big.Int).Mul(new(big.Int).SetUint64(bp), cdV))
	}
	if wC.Sign() > 0 {
		for _, w := range in.Contributors {
			v := new(big.Int).SetUint64(w.Weight)
			v.Mul(v, big.NewInt(int64(in.Shares.ContributorsBP)))
			add(w.Account, v.Mul(v, dV))
		}
	}
	if wV.Sign() > 0 {
		for _, w := range in.Validators {
			v := new(big.Int).SetUint64(w.Weight)
			v.Mul(v, big.NewInt(int64(in.Shares.ValidatorsBP)))
			add(w.Account, v.Mul(v, dC))
		}
	}
	den := new(big.Int).Mul(cdV, big.NewInt(TotalBP))
	fee := new(big.Int).SetUint64(in.Fee)

	type share struct {
		account string
		amount  uint64
		rem     *big.Int
	}
	shares := make([]share, 0, len(num))
	var given uint64
	for account, n := range num {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(n, fee), den, new(big.Int))
		shares = append(shares, share{account, q.Uint64(), r})
		given += q.Uint64()
	}
	slices.SortFunc(shares, func(a, b share) int {
		if c := b.rem.Cmp(a.rem); c != 0 {
			return c
		}
		return cmp.Compare(a.account, b.account)
	})
	for i := range in.Fee - given {
		shares[i].amount++
	}
	slices.SortFunc(shares, func(a, b share) int { return cmp.Compare(a.account, b.account) })
	out := make([]Payout, 0, len(shares))
	for _, s := range shares {
		if s.amount > 0 {
			out = append(out, Payout{Account: s.account, Amount: s.amount})
		}
	}
	return out, nil
}

func total(ws []Weight) *big.Int {
	t := new(big.Int)
	for _, w := range ws {
		t.Add(t, new(big.Int).SetUint64(w.Weight))
	}
	return t
}

func validate(in Input) error {
	s := in.Shares
	if sum := uint64(s.WorkerBP) + uint64(s.ModelOwnerBP) + uint64(s.ContributorsBP) + uint64(s.ValidatorsBP); sum != TotalBP {
		return fmt.Errorf("%w: shares: worker_bp %d + model_owner_bp %d + contributors_bp %d + validators_bp %d = %d, must be %d",
			ErrInput, s.WorkerBP, s.ModelOwnerBP, s.ContributorsBP, s.ValidatorsBP, sum, TotalBP)
	}
	if err := checkAccount("worker", in.Worker, s.WorkerBP > 0); err != nil {
		return err
	}
	if err := checkAccount("model_owner", in.ModelOwner, s.ModelOwnerBP > 0); err != nil {
		return err
	}
	unclaimedNeeded := false
	for _, g := range []struct {
		name string
		ws   []Weight
		bp   uint32
	}{{"contributors", in.Contributors, s.ContributorsBP}, {"validators", in.Validators, s.ValidatorsBP}} {
		if len(g.ws) > MaxRecipients {
			return fmt.Errorf("%w: %s has %d entries, limit %d", ErrInput, g.name, len(g.ws), MaxRecipients)
		}
		seen := make(map[string]int, len(g.ws))
		positive := false
		for i, w := range g.ws {
			if err := checkAccount(fmt.Sprintf("%s[%d].account", g.name, i), w.Account, true); err != nil {
				return err
			}
			if j, dup := seen[w.Account]; dup {
				return fmt.Errorf("%w: %s[%d].account %q repeats %s[%d]", ErrInput, g.name, i, w.Account, g.name, j)
			}
			seen[w.Account] = i
			positive = positive || w.Weight > 0
		}
		if g.bp > 0 && !positive {
			unclaimedNeeded = true
		}
	}
	return checkAccount("unclaimed (a group with basis points has no weight)", in.Unclaimed, unclaimedNeeded)
}

func checkAccount(field, account string, required bool) error {
	switch {
	case account == "" && required:
		return fmt.Errorf("%w: %s is empty", ErrInput, field)
	case len(account) > MaxAccountBytes:
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInput, field, len(account), MaxAccountBytes)
	case !utf8.ValidString(account):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInput, field, account)
	}
	return nil
}
