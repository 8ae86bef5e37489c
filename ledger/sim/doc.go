// Package sim is the deterministic simulator of the ledger's consensus: N validators in one goroutine, each
// a real consensus.Core driven the way the real driver will drive it (persist synced, then send, then
// apply, then Advance) with a real store.Store on an in-memory Pebble filesystem, on a virtual clock
// (one tick is one millisecond), over a simulated network. It owns the fault model, the Byzantine
// strategies and the invariants; it must never let anything but the seed decide what happens.
//
// # A run
//
// Everything random comes from one PCG generator seeded by Config.Seed, consumed in event order; events
// at the same virtual time run in the order they were scheduled. So a seed replays exactly (Run returns
// the same Result and, with Config.Trace, writes the same trace), and a failing seed is its own bug
// report. Pebble's background goroutines do not matter: only what the store returns does.
//
// Before the global stabilisation time (GST, drawn in 2-6 s when any fault is on) the network, per
// Config.Faults and with rates drawn per run: drops messages (5-30%), delays some by up to 2 s, delivers
// some twice, reorders them (without Reorder each link is FIFO, like a stream), and partitions the
// validators in two groups for 0.2-1.5 s at a time; honest validators crash at random moments, and a third
// of the time right after they lock on a block, and restart 0.05-2 s later from a crash clone of their
// filesystem (vfs.MemFS.CrashClone), which keeps what was synced and a random share of what was not. At GST all faults stop, crashed validators restart, and
// every message arrives within 10 ms. The driver answers a lagging peer (Ready.Lagging) with the commits
// of its store after a per-run delay of 0-1 s, as block sync would.
//
// Up to f < n/3 validators are Byzantine. Silent ones never send anything. Equivocating ones run a core
// but send conflicting, properly signed proposals and votes to two groups of peers (and both to a few),
// plus garbage now and then (undecodable or cut-off bytes, bad signatures, non-validator indices, far
// future heights). Most of them collude: they vote for each round's first proposal whatever their own
// core thinks, split the honest validators the same way, and send precommits to only part of a group,
// the classic attack on locking. With unequal powers Byzantine validators get power 1, so their share of
// the power stays below a third.
//
// # Invariants, checked after every step
//
//   - agreement: no two honest validators decide different blocks at one height;
//   - validity: every decided block was proposed (signed in a proposal), names the proposer the validator
//     set gives for its round, extends the decided chain, and carries a certificate that verifies
//     signature by signature with more than 2/3 of the power (checked here independently of
//     consensus.VerifyCertificate);
//   - no honest validator ever signs two different messages for one height, round and step, across
//     crashes and restarts (every message an honest validator sends is recorded);
//   - evidence: an honest validator that receives two conflicting messages signed by one validator, both
//     while it is at their height, undecided, and within its round lookahead, has reported that evidence
//     by the time it has processed the second; every evidence report verifies and names a Byzantine
//     validator; garbage is never accepted;
//   - liveness: after GST every height is decided within 2n+1 rounds counted from where the validators
//     were at GST (see maxRoundsAfterHeal), and the run reaches max(Heights, heights at GST + PostHeal)
//     at every honest validator without 120 s of virtual time passing without a decision.
//
// The signatures are a hash of a per-validator secret and the message (hashScheme): unforgeable inside the
// simulator, and a hundred times cheaper than Ed25519, which Config.Ed25519 switches back on.
//
// `go test ./ledger/sim` runs a CI matrix of 4,000 seeds (every fault kind together at 4, 7 and 10
// validators, each kind alone, and Byzantine validators on a healthy network); -sim.seeds, -sim.start,
// -sim.validators and -sim.faults run others, and `shoulders sim` runs any number from the command line.
// The scenario scripts in testdata/scenarios drive the same validators by hand (scenario_test.go).
package sim
