package consensus

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxTotalPower bounds the validator set's total voting power, so that quorum arithmetic (3·power) and
// proposer priorities never overflow an int64.
const MaxTotalPower = 1 << 60

// ErrValidatorSet is returned (wrapped) for a validator set that breaks the rules of NewValidatorSet.
var ErrValidatorSet = errors.New("consensus: invalid validator set")

// Validator is a member of the validator set: its key and its voting power (stake).
type Validator struct {
	PubKey PublicKey
	Power  int64
}

// ValidatorSet is the validators of one height, in a fixed order (a vote names its validator by index),
// with their proposer priorities at the start of that height. It is immutable once built.
//
// The proposer of round r is chosen by stake-weighted round robin (the smooth weighted round robin that
// CometBFT also uses): one step adds each validator's power to its priority, picks the highest priority
// (ties to the lowest index) and takes the total power off the winner. Round r's proposer is the winner of
// step r+1 from the set's priorities, and the next height's set is this one advanced by one step, so a
// validator with a third of the power proposes a third of the heights, spread evenly, and round r of
// height h has the proposer of round 0 of height h+r. Priorities sum to zero and stay within [-total, total].
type ValidatorSet struct {
	vals  []Validator
	prio  []int64
	total int64
}

// NewValidatorSet returns the set of vals, in that order, with all priorities zero (genesis). It needs
// 1..MaxValidators validators, each with positive power and a distinct key, and a total power of at most
// MaxTotalPower.
func NewValidatorSet(vals []Validator) (*ValidatorSet, error) {
	return newValidatorSet(vals, make([]int64, len(vals)))
}

func newValidatorSet(vals []Validator, prio []int64) (*ValidatorSet, error) {
	if len(vals) == 0 || len(vals) > MaxValidators {
		return nil, fmt.Errorf("%w: %d validators, want 1..%d", ErrValidatorSet, len(vals), MaxValidators)
	}
	s := &ValidatorSet{vals: append([]Validator(nil), vals...), prio: prio}
	seen := make(map[PublicKey]struct{}, len(vals))
	for i, v := range vals {
		if v.Power <= 0 || v.Power > MaxTotalPower {
			return nil, fmt.Errorf("%w: validator %d has power %d, want 1..%d", ErrValidatorSet, i, v.Power, int64(MaxTotalPower))
		}
		if _, dup := seen[v.PubKey]; dup {
			return nil, fmt.Errorf("%w: validator %d repeats a key", ErrValidatorSet, i)
		}
		seen[v.PubKey] = struct{}{}
		s.total += v.Power
		if s.total > MaxTotalPower {
			return nil, fmt.Errorf("%w: total power over %d", ErrValidatorSet, int64(MaxTotalPower))
		}
	}
	for i, p := range prio {
		if p < -s.total || p > s.total {
			return nil, fmt.Errorf("%w: validator %d has priority %d outside [-%d, %d]", ErrValidatorSet, i, p, s.total, s.total)
		}
	}
	return s, nil
}

// Len returns the number of validators.
func (s *ValidatorSet) Len() int { return len(s.vals) }

// Validator returns validator i.
func (s *ValidatorSet) Validator(i int) Validator { return s.vals[i] }

// TotalPower returns the sum of all voting power.
func (s *ValidatorSet) TotalPower() int64 { return s.total }

// Index returns the index of the validator with key pub.
func (s *ValidatorSet) Index(pub PublicKey) (int, bool) {
	for i := range s.vals {
		if s.vals[i].PubKey == pub {
			return i, true
		}
	}
	return -1, false
}

// Quorum reports whether power is more than two thirds of the total: enough to lock or commit.
func (s *ValidatorSet) Quorum(power int64) bool { return 3*power > 2*s.total }

// OneThird reports whether power is more than a third of the total: enough to include an honest validator.
func (s *ValidatorSet) OneThird(power int64) bool { return 3*power > s.total }

// Proposer returns the index of the proposer of round r at this set's height. It takes O(r·n); the core
// keeps the schedule of its height instead of calling this per message.
func (s *ValidatorSet) Proposer(r int32) int {
	prio := append([]int64(nil), s.prio...)
	p := 0
	for i := int32(0); i <= r; i++ {
		p = s.step(prio)
	}
	return p
}

// Next returns the set for the next height: the same validators with priorities advanced one step.
func (s *ValidatorSet) Next() *ValidatorSet {
	n := &ValidatorSet{vals: s.vals, prio: append([]int64(nil), s.prio...), total: s.total}
	n.step(n.prio)
	return n
}

// step advances prio by one step of weighted round robin and returns the winner.
func (s *ValidatorSet) step(prio []int64) int {
	best := 0
	for i := range prio {
		prio[i] += s.vals[i].Power
		if prio[i] > prio[best] {
			best = i
		}
	}
	prio[best] -= s.total
	return best
}

// MarshalBinary returns the set's canonical encoding: count, then key, power and priority per validator.
func (s *ValidatorSet) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 2+len(s.vals)*48)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.vals)))
	for i, v := range s.vals {
		b = append(b, v.PubKey[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Power))
		b = binary.BigEndian.AppendUint64(b, uint64(s.prio[i]))
	}
	return b, nil
}

// UnmarshalValidatorSet decodes MarshalBinary's encoding and checks it like NewValidatorSet.
func UnmarshalValidatorSet(b []byte) (*ValidatorSet, error) {
	r := reader{b: b}
	n := int(r.u16())
	if r.err == nil && len(b)-2 != n*48 {
		return nil, fmt.Errorf("%w: %d bytes for %d validators", ErrValidatorSet, len(b), n)
	}
	if r.err != nil {
		return nil, r.err
	}
	vals := make([]Validator, n)
	prio := make([]int64, n)
	for i := range vals {
		copy(vals[i].PubKey[:], r.take(32, "key"))
		vals[i].Power = int64(r.u64())
		prio[i] = int64(r.u64())
	}
	return newValidatorSet(vals, prio)
}

// Genesis is what a chain starts from: its ID, the time and application state before the first block, and
// the first validator set (all priorities zero).
type Genesis struct {
	ChainID    string
	Time       int64 // Unix nanoseconds; the first block's time must be later
	AppHash    Hash
	Validators []Validator
}

// Validate checks the genesis: a chain ID of 1..MaxChainIDLen bytes and a valid validator set.
func (g *Genesis) Validate() error {
	if len(g.ChainID) == 0 || len(g.ChainID) > MaxChainIDLen {
		return fmt.Errorf("consensus: genesis chain ID of %d bytes, want 1..%d", len(g.ChainID), MaxChainIDLen)
	}
	_, err := NewValidatorSet(g.Validators)
	return err
}

// Hash returns the genesis hash, which the first block names as its PrevHash.
func (g *Genesis) Hash() Hash {
	enc, _ := g.MarshalBinary()
	return sha256.Sum256(append([]byte("shoulders/genesis/v1\x00"), enc...))
}

// State returns the consensus state of a chain that has committed nothing: height 1 next.
func (g *Genesis) State() (State, error) {
	if err := g.Validate(); err != nil {
		return State{}, err
	}
	vals, _ := NewValidatorSet(g.Validators)
	return State{Height: 1, PrevHash: g.Hash(), PrevTime: g.Time, Validators: vals}, nil
}

// MarshalBinary returns the genesis' canonical encoding (what Hash covers, without the domain tag).
func (g *Genesis) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+len(g.ChainID)+8+32+2+40*len(g.Validators))
	b = append(b, byte(len(g.ChainID)))
	b = append(b, g.ChainID...)
	b = binary.BigEndian.AppendUint64(b, uint64(g.Time))
	b = append(b, g.AppHash[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.Validators)))
	for _, v := range g.Validators {
		b = append(b, v.PubKey[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Power))
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's encoding and validates the result.
func (g *Genesis) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	g.ChainID = string(r.take(int(r.u8()), "chain ID"))
	g.Time = int64(r.u64())
	r.hash(&g.AppHash)
	n := int(r.u16())
	if r.err == nil && len(b)-r.off != 40*n {
		r.fail("%d bytes for %d validators", len(b)-r.off, n)
	}
	if r.err != nil {
		return r.err
	}
	g.Validators = make([]Validator, n)
	for i := range g.Validators {
		copy(g.Validators[i].PubKey[:], r.take(32, "key"))
		g.Validators[i].Power = int64(r.u64())
	}
	return g.Validate()
}
