package sim

// network is the simulated wire. Before GST it drops, duplicates, delays and (with Reorder) reorders
// messages and honours partitions, with per-run rates drawn from the seed; after GST every message arrives
// within linkDelayMax milliseconds. Without Reorder each link is FIFO, like a TCP stream: a delayed message
// holds up the ones behind it.
type network struct {
	s         *sim
	drop      float64
	dup       float64
	spike     float64
	spikeMax  int64
	fifo      bool
	last      []int64 // per link (from·n + to): latest delivery time scheduled
	sides     []bool  // partition in force: which side each validator is on
	partition int
}

func (net *network) init(s *sim) {
	net.s = s
	f, rng := s.cfg.Faults, s.rng
	if f&Drop != 0 {
		net.drop = 0.05 + 0.25*rng.Float64()
	}
	if f&Dup != 0 {
		net.dup = 0.05 + 0.15*rng.Float64()
	}
	if f&Delay != 0 {
		net.spike = 0.05 + 0.25*rng.Float64()
		net.spikeMax = 200 + rng.Int64N(1800)
	}
	net.fifo = f&Reorder == 0
	net.last = make([]int64, s.cfg.Validators*s.cfg.Validators)
}

// route decides the fate of one message: the times it arrives (none if it is lost, two if duplicated).
func (net *network) route(from, to int) []int64 {
	s := net.s
	pre := !s.healed
	if pre && net.sides != nil && net.sides[from] != net.sides[to] {
		s.res.Dropped++
		return nil
	}
	if pre && net.drop > 0 && s.rng.Float64() < net.drop {
		s.res.Dropped++
		return nil
	}
	times := []int64{net.arrival(from, to, pre)}
	if pre && net.dup > 0 && s.rng.Float64() < net.dup {
		times = append(times, net.arrival(from, to, pre))
	}
	return times
}

func (net *network) arrival(from, to int, pre bool) int64 {
	s := net.s
	at := s.now + linkDelayMin + s.rng.Int64N(linkDelayMax-linkDelayMin+1)
	if pre && net.spike > 0 && s.rng.Float64() < net.spike {
		at += s.rng.Int64N(net.spikeMax)
	}
	if net.fifo {
		link := from*s.cfg.Validators + to
		at = max(at, net.last[link])
		net.last[link] = at
	}
	return at
}
