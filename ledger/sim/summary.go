package sim

import (
	"runtime"
	"slices"
	"sync"
)

// RunSeeds runs cfg with seeds start, start+1, ... start+count-1 on up to workers goroutines (GOMAXPROCS
// if workers <= 0) and returns the results in seed order. Each run is independent and deterministic, so
// the results do not depend on the number of workers.
func RunSeeds(cfg Config, start uint64, count, workers int) []Result {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	results := make([]Result, count)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(workers, max(count, 1)) {
		wg.Go(func() {
			for i := range next {
				c := cfg
				c.Seed = start + uint64(i)
				results[i] = Run(c)
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// Summary aggregates the runs of one configuration.
type Summary struct {
	Validators         int      `json:"validators"`
	Byzantine          int      `json:"byzantine"`
	Faults             string   `json:"faults"`
	Runs               int      `json:"runs"`
	HeightsCommitted   uint64   `json:"heights_committed"`
	SafetyViolations   int      `json:"safety_violations"`
	LivenessViolations int      `json:"liveness_violations"`
	Equivocations      int      `json:"equivocations"`
	EvidenceFound      int      `json:"evidence_found"`
	RoundsAfterHealP50 int      `json:"rounds_after_heal_p50"`
	RoundsAfterHealP99 int      `json:"rounds_after_heal_p99"`
	RoundsAfterHealMax int      `json:"rounds_after_heal_max"`
	Crashes            int      `json:"crashes"`
	Steps              uint64   `json:"steps"`
	Failed             []Failed `json:"failed,omitempty"`
}

// Failed is a seed that broke an invariant, with what broke.
type Failed struct {
	Seed       uint64      `json:"seed"`
	Violations []Violation `json:"violations"`
}

// Summarize aggregates results of one configuration.
func Summarize(results []Result) Summary {
	var s Summary
	var rounds []int
	for i := range results {
		r := &results[i]
		if i == 0 {
			s.Validators, s.Byzantine, s.Faults = r.Validators, r.Byzantine, r.Faults.String()
		}
		s.Runs++
		s.HeightsCommitted += r.Heights
		s.Equivocations += r.Equivocations
		s.EvidenceFound += r.Evidence
		s.Crashes += r.Crashes
		s.Steps += r.Steps
		rounds = append(rounds, r.RoundsAfterHeal...)
		for _, v := range r.Violations {
			if v.Safety() {
				s.SafetyViolations++
			} else {
				s.LivenessViolations++
			}
		}
		if r.Failed() {
			s.Failed = append(s.Failed, Failed{Seed: r.Seed, Violations: r.Violations})
		}
	}
	slices.Sort(rounds)
	s.RoundsAfterHealP50 = percentile(rounds, 50)
	s.RoundsAfterHealP99 = percentile(rounds, 99)
	if len(rounds) > 0 {
		s.RoundsAfterHealMax = rounds[len(rounds)-1]
	}
	return s
}

// percentile returns the p-th percentile of sorted xs (nearest rank), 0 for none.
func percentile(xs []int, p int) int {
	if len(xs) == 0 {
		return 0
	}
	k := (p*len(xs) + 99) / 100
	return xs[max(k, 1)-1]
}
