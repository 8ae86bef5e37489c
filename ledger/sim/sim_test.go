package sim

import (
	"bytes"
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	flagSeeds      = flag.Int("sim.seeds", 0, "seeds per configuration; 0 runs the CI matrix (a few thousand seeds in all)")
	flagStart      = flag.Uint64("sim.start", 1, "first seed")
	flagValidators = flag.String("sim.validators", "", "comma-separated validator counts to run instead of the CI matrix's (each with f = (n-1)/3 Byzantine)")
	flagFaults     = flag.String("sim.faults", "", "faults to inject instead of the CI matrix's (drop,delay,dup,reorder,partition,crash | all | none)")
	flagEd25519    = flag.Bool("sim.ed25519", false, "sign with Ed25519 instead of the simulator's hash signatures")
)

type simCase struct {
	n      int
	faults Faults
	seeds  int
}

// ciMatrix is what `go test ./ledger/sim` runs: every fault kind together at 4, 7 and 10 validators,
// each fault kind alone, and Byzantine validators on a healthy network. 4,000 seeds.
var ciMatrix = []simCase{
	{4, AllFaults, 1500}, {7, AllFaults, 1000}, {10, AllFaults, 600},
	{4, Drop, 100}, {4, Delay, 100}, {4, Dup, 100}, {4, Reorder, 100}, {4, Partition, 100}, {4, Crash, 100},
	{7, 0, 300},
}

func matrix(t *testing.T) []simCase {
	cases := ciMatrix
	if *flagValidators != "" || *flagFaults != "" || *flagSeeds > 0 {
		sizes := []int{4, 7, 10}
		if *flagValidators != "" {
			sizes = nil
			for _, s := range strings.Split(*flagValidators, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil {
					t.Fatalf("-sim.validators: %v", err)
				}
				sizes = append(sizes, n)
			}
		}
		faults := AllFaults
		if *flagFaults != "" {
			f, err := ParseFaults(*flagFaults)
			if err != nil {
				t.Fatal(err)
			}
			faults = f
		}
		seeds := *flagSeeds
		if seeds <= 0 {
			seeds = 1000
		}
		cases = nil
		for _, n := range sizes {
			cases = append(cases, simCase{n, faults, seeds})
		}
		return cases
	}
	if testing.Short() {
		var short []simCase
		for _, c := range cases {
			short = append(short, simCase{c.n, c.faults, max(c.seeds/20, 5)})
		}
		return short
	}
	return cases
}

// TestSimulator runs the seeded simulations and fails with the seeds that broke an invariant and the
// command that replays each.
func TestSimulator(t *testing.T) {
	for _, c := range matrix(t) {
		t.Run(fmt.Sprintf("n=%d/faults=%v", c.n, c.faults), func(t *testing.T) {
			f := (c.n - 1) / 3
			start := time.Now()
			res := RunSeeds(Config{Validators: c.n, Byzantine: f, Faults: c.faults, Ed25519: *flagEd25519}, *flagStart, c.seeds, 0)
			s := Summarize(res)
			t.Logf("%d seeds from %d in %v: %d heights, %d equivocations reaching honest validators, %d evidence, rounds after GST p50 %d p99 %d max %d",
				s.Runs, *flagStart, time.Since(start).Round(time.Millisecond), s.HeightsCommitted, s.Equivocations, s.EvidenceFound,
				s.RoundsAfterHealP50, s.RoundsAfterHealP99, s.RoundsAfterHealMax)
			for i, fl := range s.Failed {
				if i == 10 {
					t.Errorf("... and %d more failing seeds", len(s.Failed)-10)
					break
				}
				t.Errorf("seed %d: %v\n  replay: go test ./ledger/sim -run TestSimulator -sim.validators=%d -sim.faults=%v -sim.start=%d -sim.seeds=1\n  trace:  shoulders sim --validators %d --byzantine %d --faults %v --seed-start %d --seeds 1 --trace",
					fl.Seed, fl.Violations, c.n, c.faults, fl.Seed, c.n, f, c.faults, fl.Seed)
			}
			if s.Runs != c.seeds || s.HeightsCommitted < uint64(c.seeds*10) {
				t.Errorf("%d runs committed %d heights, want %d runs of at least 10 heights", s.Runs, s.HeightsCommitted, c.seeds)
			}
		})
	}
}

// TestSimulatorEd25519 runs a few seeds with production signatures, so that what the fast runs prove holds
// with the real scheme too.
func TestSimulatorEd25519(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 4
	}
	s := Summarize(RunSeeds(Config{Validators: 4, Byzantine: 1, Faults: AllFaults, Ed25519: true}, 1, seeds, 0))
	if len(s.Failed) > 0 {
		t.Fatalf("violations with Ed25519: %+v", s.Failed)
	}
	if s.HeightsCommitted < uint64(10*seeds) {
		t.Fatalf("%d heights over %d seeds", s.HeightsCommitted, seeds)
	}
}

// TestSimulatorReproducible checks that a seed replays exactly: same result, same event trace.
func TestSimulatorReproducible(t *testing.T) {
	for _, seed := range []uint64{3, 1009} {
		var t1, t2 bytes.Buffer
		cfg := Config{Validators: 7, Byzantine: 2, Faults: AllFaults, Seed: seed}
		cfg.Trace = &t1
		r1 := Run(cfg)
		cfg.Trace = &t2
		r2 := Run(cfg)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("seed %d: two runs differ:\n%+v\n%+v", seed, r1, r2)
		}
		if !bytes.Equal(t1.Bytes(), t2.Bytes()) || t1.Len() == 0 {
			t.Fatalf("seed %d: traces differ (%d and %d bytes)", seed, t1.Len(), t2.Len())
		}
		if r1.Crashes == 0 || r1.Equivocations == 0 {
			t.Fatalf("seed %d exercised too little: %d crashes, %d equivocations", seed, r1.Crashes, r1.Equivocations)
		}
	}
}

// TestSimulatorCatchesUnsyncedSignState plants the bug the store exists to prevent: a driver that sends
// votes before their SignState is durable. Crashes then make validators forget what they signed and sign
// something else; the simulator must see it.
func TestSimulatorCatchesUnsyncedSignState(t *testing.T) {
	res := RunSeeds(Config{Validators: 4, Byzantine: 1, Faults: Crash | Drop, brokenDriver: true}, 1, 100, 0)
	caught := 0
	for _, r := range res {
		for _, v := range r.Violations {
			if v.Kind == "double_sign" {
				caught++
				break
			}
		}
	}
	if caught < 10 {
		t.Fatalf("the simulator caught double signing in %d of 100 runs of a driver that does not persist its signer state", caught)
	}
	t.Logf("caught in %d of 100 runs", caught)
}

// commitGaps returns the virtual milliseconds between consecutive first decisions.
func commitGaps(r Result) []int64 {
	var gaps []int64
	for i := 1; i < len(r.CommitTimes); i++ {
		gaps = append(gaps, r.CommitTimes[i]-r.CommitTimes[i-1])
	}
	return gaps
}

func stats(xs []int64) (mean, maxv int64) {
	var sum int64
	for _, x := range xs {
		sum += x
		maxv = max(maxv, x)
	}
	return sum / int64(max(len(xs), 1)), maxv
}

// TestNoCommitDelay checks that a healthy network starts the next height as soon as a block is committed:
// the time between commits is the three message delays of a round (1-10 ms each here) and the
// proposer's moment to build a block, nothing like CometBFT's fixed one-second commit timeout.
func TestNoCommitDelay(t *testing.T) {
	r := Run(Config{Validators: 4, Seed: 1, Heights: 100})
	if r.Failed() {
		t.Fatal(r.Violations)
	}
	mean, maxGap := stats(commitGaps(r))
	t.Logf("4 healthy validators, link delay 1-10 ms: %d ms between commits on average, %d ms at most", mean, maxGap)
	if maxGap > 3*linkDelayMax+5 {
		t.Fatalf("a height took %d ms on a healthy network whose round trip is at most %d ms", maxGap, 3*linkDelayMax+5)
	}
}

// TestProposerDown checks that a validator known to be down costs its turns as proposer much less than a
// propose timeout: once it has been silent for a whole height, the others wait TimeoutProposeDown
// (50 ms) for it, not TimeoutPropose (1 s; CometBFT's default is 3 s).
func TestProposerDown(t *testing.T) {
	r := Run(Config{Validators: 4, Behaviours: []Behaviour{Honest, Honest, Honest, Silent}, Seed: 1, Heights: 100})
	if r.Failed() {
		t.Fatal(r.Violations)
	}
	gaps := commitGaps(r)[2:] // from height 3 on, when it has been silent for a whole height
	mean, maxGap := stats(gaps)
	t.Logf("1 of 4 validators dead, link delay 1-10 ms: %d ms between commits on average, %d ms at most (its turns)", mean, maxGap)
	if maxGap >= 200 {
		t.Fatalf("a dead proposer's turn cost %d ms", maxGap)
	}
}
