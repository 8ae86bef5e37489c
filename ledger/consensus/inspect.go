package consensus

// RoundVotes is what the core holds for one round of the current height: the proposal it took (if any) and
// each validator's prevote and precommit. It is a copy, for debug views; nothing in it feeds back.
type RoundVotes struct {
	Round      int32
	Proposal   *Hash // the block proposed by the round's proposer, if this core has its proposal
	Prevotes   []VoteEntry
	Precommits []VoteEntry
}

// VoteEntry is one validator's vote in a round: the block it voted for (the zero hash is nil), or Missing.
type VoteEntry struct {
	Validator int
	BlockHash Hash
	Missing   bool
}

// Votes returns a copy of the votes of every round of the current height that the core recorded anything
// for, lowest round first.
func (c *Core) Votes() []RoundVotes {
	var out []RoundVotes
	for r := range c.rounds.byNum {
		rs := c.rounds.byNum[r]
		if rs == nil {
			continue
		}
		rv := RoundVotes{Round: int32(r), Prevotes: copyVotes(&rs.prevotes), Precommits: copyVotes(&rs.precommits)}
		if rs.proposal != nil {
			h := rs.proposal.hash
			rv.Proposal = &h
		}
		out = append(out, rv)
	}
	return out
}

func copyVotes(vs *voteSet) []VoteEntry {
	out := make([]VoteEntry, len(vs.votes))
	for i := range vs.votes {
		out[i] = VoteEntry{Validator: i, Missing: !vs.has.Has(i)}
		if vs.has.Has(i) {
			out[i].BlockHash = vs.votes[i].BlockHash
		}
	}
	return out
}
