// Package consensus is the ledger's Byzantine fault tolerant consensus: the Tendermint algorithm of
// Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus" (2018), as a pure state machine.
//
// It owns the algorithm (heights, rounds, propose/prevote/precommit, the locked and valid value rules,
// commit on more than 2/3 of the voting power, round timeouts that grow per round), the messages and their
// canonical encoding, the validator set with its stake-weighted round-robin proposer, the double-sign
// guard, evidence of equivocation, and the verification of commit certificates. It never starts a
// goroutine, reads a clock, does I/O or draws a random number: the same inputs give the same outputs, which
// is what lets ledger/sim run it unchanged under a deterministic simulator.
//
// # Driving a Core
//
// A driver (one goroutine) feeds a Core messages from the network with Step, time with Tick (one tick is
// Config.Tick of real time; TicksToDeadline says how long it may sleep instead), and block payloads with
// Propose when a Ready asks for one. After any input it takes the Ready and must, in order:
//
//  1. persist Ready.SignState and Ready.Lock, and Ready.Decided (the block, its certificate, the next
//     validator set, and the application's writes, in one atomic batch), synced to stable storage;
//  2. only then send Ready.Messages to the other validators;
//  3. apply the decided block to the application, report Ready.Evidence, answer Ready.ProposalRequest and
//     Ready.Lagging (with Commit messages from its store);
//  4. call Advance. The core enters the next height there, right away: there is no commit delay.
//
// After a restart the driver builds the Core from what it persisted (State: height, previous block,
// validator set, SignState, LockProof). The guard then refuses to sign anything at or below the last
// signed height/round/step except the identical message, so a validator never signs two conflicting
// votes, across crashes included; and the restored lock (with the locked block and the prevotes that
// locked it) keeps it from voting against its lock and lets it re-propose the locked block.
//
// Blocks name their proposer, the round they were first proposed in, the previous block's hash, a time
// chosen by the proposer (strictly increasing; the core reads no clock, the driver passes it in), the
// application hash after the previous block, and the Merkle root of their opaque transactions. Whether
// the transactions and AppHash are right is the application's call (Config.ValidateBlock). Block sync
// checks blocks with VerifyCommit; evidence is checked with VerifyEvidence.
//
// # Decisions where the paper and the issue are silent
//
// Encoding. Messages use a hand-written, fixed-layout, big-endian binary encoding (codec.go) rather than
// protobuf: it needs no protoc, every length is checked against the bytes left before anything is
// allocated, and it is canonical by construction (the decoder accepts exactly what the encoder produces,
// which the fuzzer checks), so sign bytes and hashes never depend on an encoder's choices. Votes sign a
// domain tag, the chain ID, step, height, round and block hash; proposals also the POL round. Nil is the
// zero hash.
//
// Signatures. Signing uses crypto/ed25519. Verification uses the ZIP-215 rules (ed25519consensus) both
// for single signatures and for batches: crypto/ed25519's Verify is stricter than any sound batch
// equation, and a signature that one node accepts in a certificate batch and another rejects alone would
// split them. Commit certificates are verified in one batch (about twice as fast as one by one).
//
// Beyond the paper, each change affecting only liveness or speed, never safety:
//   - No commit delay: the next height starts at Advance. The proposer asks the driver for a payload at
//     once; the driver proposes as soon as it has transactions or a short interval has passed.
//   - A proposer known to be down (not one verified message at the previous height or this one) gets
//     TimeoutProposeDown (50ms) instead of the propose timeout (1s and growing).
//   - More than 2/3 nil precommits end the round at once: nothing can be decided in it.
//   - A round stuck in one step for Config.Rebroadcast sends again everything it holds for the round
//     (proposal, proof of lock, every validator's votes): the gossip that repairs a lossy network.
//   - A round that has not ended after twice its three timeouts moves on by itself, in case a vote was
//     lost for good (the paper assumes eventual delivery).
//   - A proposer that re-proposes its valid value sends the prevotes that prove it along.
//   - A validator that voted twice in one round counts for each block this core knows that it voted for:
//     otherwise an honest validator locked through a Byzantine vote could never show its proof to peers
//     holding the Byzantine's other vote. Quorum intersection still holds (votes.go).
//   - The round-skip rule (line 55) moves to the highest round R such that validators with more than a
//     third of the power sent messages for R or later, tracking only each validator's highest round.
//
// Limits (every one a peer could otherwise push): messages for the current height within RoundLookahead
// (8) rounds of the current one, for the next height at most 4 per validator (verified first), none for
// heights further on; extra votes of equivocators at most 2 per validator slot of a round; the wire
// limits of codec.go. Messages from decided heights are dropped, and when their sender is clearly behind
// the core reports it in Ready.Lagging (at most once per rebroadcast interval per validator) so the driver
// can send it the commits it missed. Evidence is detected for conflicting messages received at the
// current height; older heights keep no vote sets to compare with. Every ignored message is counted by
// reason (Counters) and Step returns the reason as an error; nothing panics on input.
//
// The validator set does not change within this issue: Decision.Next carries the next height's set (with
// advanced proposer priorities) for the store, and the place where a later issue applies the
// application's validator updates. Messages buffered for the next height are verified with the current
// set, which will then have to move to replay time.
//
// A core without a signer, or whose key is not in the validator set, is an observer: it follows and
// decides heights without signing anything.
package consensus
