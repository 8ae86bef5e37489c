package sim

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkHeight measures one height of consensus among n validators in the simulator, on a healthy
// network: every core, store (Pebble on an in-memory filesystem, synced writes included), message
// encoding and delivery, and the invariant checks. One op is one height decided by every validator.
// steps/s counts messages given to cores per second of wall time.
func BenchmarkHeight(b *testing.B) {
	for _, n := range []int{4, 10} {
		for _, ed := range []bool{false, true} {
			name := fmt.Sprintf("validators=%d/sig=hash", n)
			if ed {
				name = fmt.Sprintf("validators=%d/sig=ed25519", n)
			}
			b.Run(name, func(b *testing.B) {
				s := newSim(Config{Validators: n, Behaviours: make([]Behaviour, n), Seed: 1, Ed25519: ed, Heights: 1})
				defer s.close()
				s.run() // warm up: the first height
				steps := s.res.Steps
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					s.target = s.lowestHonest() + 1
					s.run()
				}
				if s.res.Failed() {
					b.Fatal(s.res.Violations)
				}
				b.ReportMetric(float64(s.res.Steps-steps)/time.Since(start).Seconds(), "steps/s")
				b.ReportMetric(float64(s.res.Steps-steps)/float64(b.N), "steps/height")
			})
		}
	}
}
