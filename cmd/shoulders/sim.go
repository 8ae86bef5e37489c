package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shouldersnet/shoulders/ledger/sim"
	"github.com/spf13/cobra"
)

// simReport is the --json form of `shoulders sim`: totals over every configuration run, then each one.
type simReport struct {
	Runs               int           `json:"runs"`
	HeightsCommitted   uint64        `json:"heights_committed"`
	SafetyViolations   int           `json:"safety_violations"`
	LivenessViolations int           `json:"liveness_violations"`
	EvidenceFound      int           `json:"evidence_found"`
	RoundsAfterHealP50 int           `json:"rounds_after_heal_p50"`
	RoundsAfterHealP99 int           `json:"rounds_after_heal_p99"`
	SeedStart          uint64        `json:"seed_start"`
	Seconds            float64       `json:"seconds"`
	Configs            []sim.Summary `json:"configs"`
}

func newSimCmd() *cobra.Command {
	var (
		validators []int
		byzantine  int
		seeds      int
		seedStart  uint64
		heights    int
		faults     string
		ed25519    bool
		trace      bool
		jsonOut    bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the deterministic consensus simulator over many seeds",
		Long: `Run the ledger's consensus in the deterministic simulator: N validators in one goroutine on a
virtual clock, a network that drops, delays, duplicates, reorders and partitions messages before a global
stabilisation time, honest validators that crash and restart on crashable storage, and Byzantine validators
that equivocate or stay silent. Every step is checked for agreement, validity, honest double signing,
evidence of every equivocation an honest validator received, and liveness after the network heals.

Each seed replays exactly: a failing one is printed with the command that traces it.`,
		Example: `  shoulders sim --validators 7 --byzantine 2 --seeds 1000
  shoulders sim --validators 4,7,10 --seeds 5000 --seed-start 1000000 --json
  shoulders sim --validators 4 --faults crash,partition --seeds 1 --seed-start 42 --trace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs, err := sim.ParseFaults(faults)
			if err != nil {
				return err
			}
			if seeds < 1 {
				return fmt.Errorf("--seeds %d: want at least 1", seeds)
			}
			if trace && (seeds != 1 || len(validators) != 1) {
				return errors.New("--trace needs exactly one seed and one validator count")
			}
			out := cmd.OutOrStdout()
			rep := simReport{SeedStart: seedStart}
			start := time.Now()
			for _, n := range validators {
				f := byzantine
				if f < 0 {
					f = (n - 1) / 3
				}
				cfg := sim.Config{Validators: n, Byzantine: f, Heights: heights, Faults: fs, Ed25519: ed25519}
				if trace {
					cfg.Trace = os.Stderr
				}
				if n < 1 || 3*f >= n {
					return fmt.Errorf("--validators %d --byzantine %d: need 1 <= n and f < n/3", n, f)
				}
				s := sim.Summarize(sim.RunSeeds(cfg, seedStart, seeds, 0))
				rep.Configs = append(rep.Configs, s)
				rep.Runs += s.Runs
				rep.HeightsCommitted += s.HeightsCommitted
				rep.SafetyViolations += s.SafetyViolations
				rep.LivenessViolations += s.LivenessViolations
				rep.EvidenceFound += s.EvidenceFound
				rep.RoundsAfterHealP50 = max(rep.RoundsAfterHealP50, s.RoundsAfterHealP50)
				rep.RoundsAfterHealP99 = max(rep.RoundsAfterHealP99, s.RoundsAfterHealP99)
			}
			rep.Seconds = time.Since(start).Seconds()
			if jsonOut {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				tw := newTable(out)
				fmt.Fprintln(tw, "VALIDATORS\tBYZANTINE\tFAULTS\tRUNS\tHEIGHTS\tSAFETY VIOLATIONS\tLIVENESS VIOLATIONS\tEQUIVOCATIONS\tEVIDENCE\tROUNDS AFTER HEAL p50/p99/max")
				for _, s := range rep.Configs {
					fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d/%d\n", s.Validators, s.Byzantine, s.Faults, s.Runs,
						s.HeightsCommitted, s.SafetyViolations, s.LivenessViolations, s.Equivocations, s.EvidenceFound,
						s.RoundsAfterHealP50, s.RoundsAfterHealP99, s.RoundsAfterHealMax)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(out, "%d runs (seeds %d..%d) in %.1fs\n", rep.Runs, seedStart, seedStart+uint64(seeds)-1, rep.Seconds)
			}
			failed := 0
			for _, s := range rep.Configs {
				for _, fl := range s.Failed {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "seed %d (validators %d, byzantine %d): %v\n  trace: shoulders sim --validators %d --byzantine %d --faults %s --heights %d --seeds 1 --seed-start %d --trace\n",
						fl.Seed, s.Validators, s.Byzantine, fl.Violations, s.Validators, s.Byzantine, fs, heights, fl.Seed)
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d seeds broke an invariant (%d safety, %d liveness violations)",
					failed, rep.SafetyViolations, rep.LivenessViolations)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&validators, "validators", []int{4}, "validator counts to simulate, comma separated")
	f.IntVar(&byzantine, "byzantine", -1, "Byzantine validators (equivocating or silent); -1: the most tolerated, (n-1)/3")
	f.IntVar(&seeds, "seeds", 100, "number of seeded runs per validator count")
	f.Uint64Var(&seedStart, "seed-start", 1, "first seed")
	f.IntVar(&heights, "heights", 10, "heights every honest validator must commit in each run")
	f.StringVar(&faults, "faults", "all", "faults before GST: drop,delay,dup,reorder,partition,crash, all or none")
	f.BoolVar(&ed25519, "ed25519", false, "sign with Ed25519 (production) instead of the simulator's hash signatures; much slower")
	f.BoolVar(&trace, "trace", false, "print every event of the run to stderr (one seed only)")
	f.BoolVar(&jsonOut, "json", false, "print a machine-readable summary")
	return cmd
}
