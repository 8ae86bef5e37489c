package ledger

import (
	"context"
	"time"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// DebugView is /debug/consensus: where the core is in the current height, every vote it holds for it, and
// what it and the transport dropped.
type DebugView struct {
	Height           uint64            `json:"height"`
	Round            int32             `json:"round"`
	Step             string            `json:"step"`
	Proposer         string            `json:"proposer"` // of the current round
	Self             string            `json:"self"`     // this validator, or "" for an observer
	LockedRound      int32             `json:"locked_round"`
	LockedBlock      string            `json:"locked_block,omitempty"`
	ValidRound       int32             `json:"valid_round"`
	ValidBlock       string            `json:"valid_block,omitempty"`
	WaitingToPropose bool              `json:"waiting_to_propose"`
	Rounds           []RoundView       `json:"rounds"`
	Accepted         uint64            `json:"messages_accepted"`
	Dropped          map[string]uint64 `json:"messages_dropped"` // by reason
	Evidence         uint64            `json:"evidence"`
	Decided          uint64            `json:"decided"`
	TransportDrop    uint64            `json:"transport_dropped"` // queue or inbox full
	TransportBad     uint64            `json:"transport_undecodable"`
}

// RoundView is one round's proposal and votes.
type RoundView struct {
	Round      int32      `json:"round"`
	Proposal   string     `json:"proposal,omitempty"` // block hash
	Prevotes   []VoteView `json:"prevotes"`
	Precommits []VoteView `json:"precommits"`
}

// VoteView is one validator's vote: a block hash, "nil", or "missing".
type VoteView struct {
	Validator string `json:"validator"`
	Vote      string `json:"vote"`
}

// Debug asks the main loop (the core's owner) for a DebugView; it waits at most two seconds.
func (d *Driver) Debug() DebugView {
	req := make(chan DebugView, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	select {
	case d.debugReq <- req:
	case <-ctx.Done():
		return DebugView{Step: "unknown: the driver did not answer"}
	}
	select {
	case v := <-req:
		return v
	case <-ctx.Done():
		return DebugView{Step: "unknown: the driver did not answer"}
	}
}

// debugView builds the view; only the main loop calls it.
func (d *Driver) debugView() DebugView {
	st := d.core.Status()
	name := func(i int) string {
		if i >= 0 && i < len(d.cfg.Validators) {
			return d.cfg.Validators[i].String()
		}
		return ""
	}
	hash := func(h consensus.Hash) string {
		if h.IsZero() {
			return ""
		}
		return h.String()
	}
	c := d.core.Counters()
	v := DebugView{
		Height: st.Height, Round: st.Round, Step: st.Step.String(), Proposer: name(st.Proposer), Self: name(st.Self),
		LockedRound: st.LockedRound, LockedBlock: hash(st.LockedHash), ValidRound: st.ValidRound, ValidBlock: hash(st.ValidHash),
		WaitingToPropose: d.request != nil, Rounds: []RoundView{}, Accepted: c.Accepted, Dropped: map[string]uint64{},
		Evidence: c.Evidence, Decided: c.Decided, TransportDrop: d.tr.dropped.Load(), TransportBad: d.tr.bad.Load(),
	}
	for r, n := range c.Dropped {
		if n > 0 {
			v.Dropped[consensus.DropReason(r).String()] = n
		}
	}
	votes := func(es []consensus.VoteEntry) []VoteView {
		out := make([]VoteView, len(es))
		for i, e := range es {
			vote := "missing"
			switch {
			case e.Missing:
			case e.BlockHash.IsZero():
				vote = "nil"
			default:
				vote = e.BlockHash.String()
			}
			out[i] = VoteView{Validator: name(e.Validator), Vote: vote}
		}
		return out
	}
	for _, rv := range d.core.Votes() {
		view := RoundView{Round: rv.Round, Prevotes: votes(rv.Prevotes), Precommits: votes(rv.Precommits)}
		if rv.Proposal != nil {
			view.Proposal = rv.Proposal.String()
		}
		v.Rounds = append(v.Rounds, view)
	}
	return v
}
