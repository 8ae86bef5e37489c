package sim

import (
	"fmt"
	"io"
	"strings"
)

// Faults is a set of fault kinds the simulated network and machines inject before the global
// stabilisation time (GST).
type Faults uint8

// The fault kinds.
const (
	Drop      Faults = 1 << iota // messages lost
	Delay                        // some messages delayed by up to seconds
	Dup                          // messages delivered twice
	Reorder                      // no per-link ordering: messages overtake each other
	Partition                    // the validators split in two groups that cannot talk
	Crash                        // honest validators crash, losing unsynced writes, and restart

	AllFaults = Drop | Delay | Dup | Reorder | Partition | Crash
)

var faultNames = []struct {
	f    Faults
	name string
}{{Drop, "drop"}, {Delay, "delay"}, {Dup, "dup"}, {Reorder, "reorder"}, {Partition, "partition"}, {Crash, "crash"}}

// String lists the faults, comma separated ("none" for the empty set).
func (f Faults) String() string {
	var names []string
	for _, fn := range faultNames {
		if f&fn.f != 0 {
			names = append(names, fn.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// ParseFaults parses a comma-separated list of fault names; "all" and "none" are accepted too.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch part {
		case "", "none":
			continue
		case "all":
			f |= AllFaults
			continue
		}
		found := false
		for _, fn := range faultNames {
			if fn.name == part {
				f |= fn.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("sim: unknown fault %q (want drop, delay, dup, reorder, partition, crash, all or none)", part)
		}
	}
	return f, nil
}

// Config is one simulated run.
type Config struct {
	Validators int    // number of validators, at least 1
	Byzantine  int    // Byzantine validators, at most (Validators-1)/3
	Seed       uint64 // everything random in the run comes from it
	Heights    int    // heights every honest validator must commit; default 10
	Faults     Faults
	// Ed25519 signs with the production scheme instead of the simulator's hash signatures (much slower).
	Ed25519 bool
	// PostHeal is how many heights must be committed after GST, at least; default 5.
	PostHeal int
	// Behaviours, if set (one per validator), fixes who is Byzantine and how, instead of drawing it from
	// the seed; Byzantine is then ignored. Measurements use it, e.g. one Silent validator: a dead one.
	Behaviours []Behaviour
	// Trace, if set, receives one line per event: the run's full story, to debug a failing seed.
	Trace io.Writer

	// brokenDriver makes honest validators' drivers send their messages without persisting the signer's
	// state first: the simulator's own test checks that it catches the double signatures that follow.
	brokenDriver bool
	// scripted runs without a random network or driver timing: a scenario script moves everything.
	scripted bool
	// powers, if set, are the voting powers instead of ones drawn from the seed.
	powers []int64
}

func (c Config) withDefaults() (Config, error) {
	if c.Validators < 1 || c.Validators > 64 {
		return c, fmt.Errorf("sim: %d validators, want 1..64", c.Validators)
	}
	if c.Behaviours != nil {
		if len(c.Behaviours) != c.Validators {
			return c, fmt.Errorf("sim: %d behaviours for %d validators", len(c.Behaviours), c.Validators)
		}
		c.Byzantine = 0
		for _, b := range c.Behaviours {
			if b != Honest {
				c.Byzantine++
			}
		}
	}
	if c.Byzantine < 0 || 3*c.Byzantine >= c.Validators {
		return c, fmt.Errorf("sim: %d Byzantine of %d validators; need f < n/3 (at most %d)", c.Byzantine, c.Validators, (c.Validators-1)/3)
	}
	if c.Heights <= 0 {
		c.Heights = 10
	}
	if c.PostHeal <= 0 {
		c.PostHeal = 5
	}
	return c, nil
}
