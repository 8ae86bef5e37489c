package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// TestScenarios runs the scripts in testdata/scenarios: small, exact stories of the algorithm, told by
// delivering, dropping and delaying messages by hand among validators that run the real core, store and
// driver (Ed25519 keys, stores on crashable in-memory filesystems). The simulator's invariants are checked
// after every step, as in the random runs. Rewrite the expected output after an intended change with
// go test ./ledger/sim -run TestScenarios -rewrite.
//
// Commands:
//
//	new validators=N [powers=P,...] [byzantine=vI,..]
//	                                       a new network at height 1 (prints the proposer schedule); the
//	                                       Byzantine validators run the core but may sign anything (sign)
//	propose vI [txs=a,b]                   vI answers its pending proposal request
//	deliver [from=vI,..] [to=vI,..] [type=proposal|prevote|precommit|commit] [round=R] [drop]
//	                                       deliver (or drop) the pending messages that match, in order
//	stabilize                              deliver everything pending until nothing is left
//	elapse ms=N                            let N milliseconds pass: timeouts fire
//	crash vI / restart vI                  crash (losing every unsynced write) / recover from the store
//	sign vI prevote|precommit h=H r=R block=Bk|nil to=vJ,..
//	                                       vI signs a vote with its own key, whatever it signed before
//	                                       (a Byzantine validator), and sends it to vJ,..
//	pending                                list the messages in flight
//	status                                 each validator's height, round, step, lock and valid value
//	counters vI                            what vI's core dropped, by reason
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		var s *sim
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "new" && s == nil {
				d.Fatalf(t, "no network yet: start with new")
			}
			if s != nil {
				s.manual.out = s.manual.out[:0]
			}
			switch d.Cmd {
			case "new":
				s = newScripted(t, d)
			case "propose":
				scriptPropose(t, s, d)
			case "deliver":
				scriptDeliver(t, s, d)
			case "stabilize":
				for i := 0; len(s.manual.pending) > 0; i++ {
					if i > 10000 {
						d.Fatalf(t, "messages keep coming")
					}
					e := s.manual.pending[0]
					s.manual.pending = s.manual.pending[1:]
					s.handle(e)
				}
			case "elapse":
				var ms int
				d.ScanArgs(t, "ms", &ms)
				s.trace("t=%dms", s.now+int64(ms))
				for range ms {
					s.advance(s.now + 1)
				}
			case "crash":
				nd := s.nodes[nodeArg(t, d, 0)]
				s.trace("v%d crashes; unsynced writes are lost", nd.id)
				nd.crash(s.rng, 0)
			case "restart":
				s.start(s.nodes[nodeArg(t, d, 0)])
			case "sign":
				scriptSign(t, s, d)
			case "pending":
				for _, e := range s.manual.pending {
					s.trace("v%d -> v%d %s", e.from, e.to, s.describeEvent(e))
				}
			case "status":
				for _, nd := range s.nodes {
					if nd.core == nil {
						s.trace("v%d down", nd.id)
						continue
					}
					st := nd.core.Status()
					line := fmt.Sprintf("v%d height=%d round=%d step=%v", nd.id, st.Height, st.Round, st.Step)
					if st.LockedRound >= 0 {
						line += fmt.Sprintf(" locked=%s@%d", s.name(st.LockedHash), st.LockedRound)
					}
					if st.ValidRound >= 0 {
						line += fmt.Sprintf(" valid=%s@%d", s.name(st.ValidHash), st.ValidRound)
					}
					s.trace("%s", line)
				}
			case "counters":
				nd := s.nodes[nodeArg(t, d, 0)]
				c := nd.core.Counters()
				s.trace("accepted=%d evidence=%d sign_refused=%d decided=%d", c.Accepted, c.Evidence, c.SignRefused, c.Decided)
				for r := consensus.DropReason(0); r < consensus.NumDropReasons; r++ {
					if c.Dropped[r] > 0 {
						s.trace("dropped %v=%d", r, c.Dropped[r])
					}
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			for _, v := range s.res.Violations {
				t.Errorf("%s: invariant broken: %v", d.Pos, v)
			}
			s.res.Violations = nil
			return string(s.manual.out)
		})
		if s != nil {
			s.close()
		}
	})
}

func newScripted(t *testing.T, d *datadriven.TestData) *sim {
	var n int
	d.ScanArgs(t, "validators", &n)
	powers := make([]int64, n)
	for i := range powers {
		powers[i] = 1
	}
	if d.HasArg("powers") {
		arg, _ := d.Arg("powers")
		if len(arg.Vals) != n {
			d.Fatalf(t, "%d powers for %d validators", len(arg.Vals), n)
		}
		for i, v := range arg.Vals {
			p, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				d.Fatalf(t, "power %q: %v", v, err)
			}
			powers[i] = p
		}
	}
	behaviours := make([]Behaviour, n)
	for _, v := range nodesArg(t, d, "byzantine") {
		behaviours[v] = Equivocate
	}
	s := newSim(Config{Validators: n, Behaviours: behaviours, Seed: 1, Ed25519: true, scripted: true, powers: powers})
	out := s.manual.out
	s.manual.out = nil
	vals := s.chk.valsAt(1)
	var sched []string
	for r := int32(0); r < int32(2*n); r++ {
		sched = append(sched, fmt.Sprintf("v%d", vals.Proposer(r)))
	}
	s.trace("%d validators, powers %v; proposers of height 1 by round: %s", n, powers, strings.Join(sched, " "))
	s.manual.out = append(s.manual.out, out...)
	return s
}

// nodeArg returns the validator named by the i-th bare argument ("v2").
func nodeArg(t *testing.T, d *datadriven.TestData, i int) int {
	var bare []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			bare = append(bare, a.Key)
		}
	}
	if i >= len(bare) {
		d.Fatalf(t, "missing validator argument")
	}
	return parseNode(t, d, bare[i])
}

func parseNode(t *testing.T, d *datadriven.TestData, s string) int {
	v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || !strings.HasPrefix(s, "v") {
		d.Fatalf(t, "bad validator %q (want v0, v1, ...)", s)
	}
	return v
}

func nodesArg(t *testing.T, d *datadriven.TestData, key string) []int {
	arg, ok := d.Arg(key)
	if !ok {
		return nil
	}
	var out []int
	for _, v := range arg.Vals {
		for _, name := range strings.Split(v, ",") {
			out = append(out, parseNode(t, d, name))
		}
	}
	return out
}

func scriptPropose(t *testing.T, s *sim, d *datadriven.TestData) {
	nd := s.nodes[nodeArg(t, d, 0)]
	rq := s.manual.requests[nd.id]
	if rq == nil || nd.core == nil {
		s.trace("v%d has not been asked to propose", nd.id)
		return
	}
	delete(s.manual.requests, nd.id)
	var txs [][]byte
	if arg, ok := d.Arg("txs"); ok {
		for _, v := range arg.Vals {
			txs = append(txs, []byte(v))
		}
	}
	err := nd.core.Propose(rq.height, rq.round, consensus.Payload{Time: max(s.now*1e6, nd.minTime), AppHash: nd.appHash, Txs: txs})
	if err != nil {
		s.trace("v%d cannot propose: %v", nd.id, err)
	}
	s.drain(nd)
}

func (s *sim) describeEvent(e event) string {
	if e.kind == evSync {
		return fmt.Sprintf("sync of %d commits", len(e.bundle))
	}
	m, err := consensus.DecodeMessage(e.data)
	if err != nil {
		return "garbage"
	}
	return s.describe(m)
}

func eventType(e event) string {
	if e.kind == evSync {
		return "commit"
	}
	m, err := consensus.DecodeMessage(e.data)
	if err != nil {
		return "garbage"
	}
	switch m := m.(type) {
	case *consensus.Proposal:
		return "proposal"
	case *consensus.Vote:
		return m.Type.String()
	}
	return "?"
}

func eventRound(e event) int32 {
	if m, err := consensus.DecodeMessage(e.data); err == nil {
		switch m := m.(type) {
		case *consensus.Proposal:
			return m.Round
		case *consensus.Vote:
			return m.Round
		}
	}
	return -1
}

func scriptDeliver(t *testing.T, s *sim, d *datadriven.TestData) {
	from, to := nodesArg(t, d, "from"), nodesArg(t, d, "to")
	var typ string
	if d.HasArg("type") {
		d.ScanArgs(t, "type", &typ)
	}
	round := -1
	if d.HasArg("round") {
		d.ScanArgs(t, "round", &round)
	}
	drop := d.HasArg("drop")
	var keep, take []event
	for _, e := range s.manual.pending {
		match := (from == nil || slices.Contains(from, e.from)) && (to == nil || slices.Contains(to, e.to)) &&
			(typ == "" || eventType(e) == typ) && (round < 0 || eventRound(e) == int32(round))
		if match {
			take = append(take, e)
		} else {
			keep = append(keep, e)
		}
	}
	s.manual.pending = keep
	if len(take) == 0 {
		s.trace("nothing to deliver")
		return
	}
	if drop {
		s.trace("dropped %d messages", len(take))
		return
	}
	for _, e := range take {
		s.handle(e)
	}
}

func scriptSign(t *testing.T, s *sim, d *datadriven.TestData) {
	nd := s.nodes[nodeArg(t, d, 0)]
	var typ string
	var h uint64
	var r int
	var block string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 && (a.Key == "prevote" || a.Key == "precommit") {
			typ = a.Key
		}
	}
	d.ScanArgs(t, "h", &h)
	d.ScanArgs(t, "r", &r)
	d.ScanArgs(t, "block", &block)
	v := &consensus.Vote{Type: consensus.Prevote, Height: h, Round: int32(r), Validator: uint16(nd.id)}
	if typ == "precommit" {
		v.Type = consensus.Precommit
	}
	if block != "nil" {
		found := false
		for hash, a := range s.manual.aliases {
			if a == block {
				v.BlockHash, found = hash, true
			}
		}
		if !found {
			d.Fatalf(t, "no block %s", block)
		}
	}
	v.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, v))
	data := consensus.EncodeMessage(v)
	for _, to := range nodesArg(t, d, "to") {
		s.trace("v%d -> v%d %s", nd.id, to, s.describe(v))
		s.send(nd.id, to, data, false)
	}
}
