package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/sim"
	"github.com/shouldersnet/shoulders/ledger/store"
	"github.com/spf13/cobra"
)

// benchFigure is one measurement beside its baseline, both taken in this run on this machine.
type benchFigure struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline"`
	BaseVal  float64 `json:"baseline_value"`
}

func newBenchConsensusCmd() *cobra.Command {
	var (
		dir     string
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "consensus",
		Short: "Measure the consensus core, its store and the simulator against baselines",
		Long: `Measure, each beside a baseline taken in the same run:
  - taking in one vote (checks, Ed25519 verification, counting) vs one bare Ed25519 verification;
  - verifying a 100-validator commit certificate in one batch vs signature by signature;
  - the store's synced per-height batch (100 transactions of 250 bytes) vs one write+fsync of as many
    bytes, in --dir (default: a temporary directory; put it on the disk you care about);
  - a simulated height among 4 and 10 validators (wall time, all in one goroutine);
  - virtual time between commits in the simulator with every validator up vs one of four dead
    (CometBFT waits a 3 s propose timeout for a dead proposer, and 1 s of commit timeout every height).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "shoulders-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dir = d
			}
			var figs []benchFigure
			add := func(f benchFigure, err error) error {
				if err != nil {
					return err
				}
				figs = append(figs, f)
				return nil
			}
			for _, step := range []func() (benchFigure, error){
				benchVote, benchCertificate, func() (benchFigure, error) { return benchStore(dir) },
				func() (benchFigure, error) { return benchSimHeight(4) }, func() (benchFigure, error) { return benchSimHeight(10) },
				benchCommitInterval,
			} {
				if err := add(step()); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if jsonOut {
				return printJSON(out, figs)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "FIGURE\tVALUE\tBASELINE\tBASELINE VALUE")
			for _, f := range figs {
				fmt.Fprintf(tw, "%s\t%.4g %s\t%s\t%.4g %s\n", f.Name, f.Value, f.Unit, f.Baseline, f.BaseVal, f.Unit)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the store benchmark (a temporary one if empty)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the figures as JSON")
	return cmd
}

func benchKeys(n int) ([]*consensus.Ed25519Signer, *consensus.Genesis) {
	g := &consensus.Genesis{ChainID: "bench", Time: 1}
	var keys []*consensus.Ed25519Signer
	for i := range n {
		seed := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		k := consensus.NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
		keys = append(keys, k)
		g.Validators = append(g.Validators, consensus.Validator{PubKey: k.PublicKey(), Power: 1})
	}
	return keys, g
}

func perOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) / 1e3 }

func benchVote() (benchFigure, error) {
	const n = 100
	keys, g := benchKeys(n)
	st, err := g.State()
	if err != nil {
		return benchFigure{}, err
	}
	c, err := consensus.New(consensus.Config{ChainID: g.ChainID, Verifier: consensus.Ed25519Verifier{}}, st)
	if err != nil {
		return benchFigure{}, err
	}
	for c.HasReady() {
		c.Ready()
		c.Advance()
	}
	var votes []*consensus.Vote
	for i := 1; i < n/4; i++ {
		v := &consensus.Vote{Type: consensus.Prevote, Height: 1, Round: 3, Validator: uint16(i), BlockHash: consensus.Hash{1}}
		v.Signature = keys[i].Sign(consensus.VoteSignBytes(g.ChainID, v))
		votes = append(votes, v)
	}
	// Each vote is new to the core once; measure over a fresh core per pass of the votes.
	core := func() *consensus.Core {
		c, _ := consensus.New(consensus.Config{ChainID: g.ChainID, Verifier: consensus.Ed25519Verifier{}}, st)
		return c
	}
	res := testing.Benchmark(func(b *testing.B) {
		k := 0
		for b.Loop() {
			if k%len(votes) == 0 {
				b.StopTimer()
				c = core()
				b.StartTimer()
			}
			c.Step(votes[k%len(votes)])
			k++
		}
	})
	msg := consensus.VoteSignBytes(g.ChainID, votes[0])
	pub := g.Validators[1].PubKey
	base := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			consensus.Ed25519Verifier{}.Verify(&pub, msg, &votes[0].Signature)
		}
	})
	return benchFigure{"step one vote (100 validators)", perOp(res), "µs", "bare Ed25519 verify", perOp(base)}, nil
}

func benchCertificate() (benchFigure, error) {
	const n = 100
	keys, g := benchKeys(n)
	vals, err := consensus.NewValidatorSet(g.Validators)
	if err != nil {
		return benchFigure{}, err
	}
	cert := &consensus.Certificate{Height: 1, BlockHash: consensus.Hash{9}, Signers: consensus.NewBitmap(n)}
	for i := range n {
		v := &consensus.Vote{Type: consensus.Precommit, Height: 1, Validator: uint16(i), BlockHash: cert.BlockHash}
		cert.Signers.Set(i)
		cert.Signatures = append(cert.Signatures, keys[i].Sign(consensus.VoteSignBytes(g.ChainID, v)))
	}
	if err := consensus.VerifyCertificate(g.ChainID, vals, cert, consensus.Ed25519Verifier{}); err != nil {
		return benchFigure{}, err
	}
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			consensus.VerifyCertificate(g.ChainID, vals, cert, consensus.Ed25519Verifier{})
		}
	})
	msg := consensus.VoteSignBytes(g.ChainID, &consensus.Vote{Type: consensus.Precommit, Height: 1, BlockHash: cert.BlockHash})
	base := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			for i := range n {
				pub := vals.Validator(i).PubKey
				consensus.Ed25519Verifier{}.Verify(&pub, msg, &cert.Signatures[i])
			}
		}
	})
	return benchFigure{"verify 100-signature certificate, batched", perOp(res), "µs", "one by one", perOp(base)}, nil
}

func benchStore(dir string) (benchFigure, error) {
	db := filepath.Join(dir, "store")
	s, err := store.Open(db, store.Options{})
	if err != nil {
		return benchFigure{}, err
	}
	defer os.RemoveAll(db)
	defer s.Close()
	_, g := benchKeys(4)
	if err := s.Init(g); err != nil {
		return benchFigure{}, err
	}
	st, _ := g.State()
	vals, prev, t := st.Validators, st.PrevHash, g.Time
	next := func(h uint64) *consensus.Decision {
		b := &consensus.Block{Header: consensus.Header{Height: h, Proposer: uint16(vals.Proposer(0)), Time: t + int64(h), PrevHash: prev}}
		for i := range 100 {
			b.Txs = append(b.Txs, make([]byte, 250))
			b.Txs[i][0], b.Txs[i][1] = byte(i), byte(h)
		}
		b.Header.TxsHash = consensus.TxsHash(b.Txs)
		d := &consensus.Decision{Block: b, Hash: b.Hash(), Next: vals.Next()}
		d.Certificate = &consensus.Certificate{Height: h, BlockHash: d.Hash, Signers: consensus.NewBitmap(4), Signatures: make([]consensus.Signature, 3)}
		for i := range 3 {
			d.Certificate.Signers.Set(i)
		}
		vals, prev = d.Next, d.Hash
		return d
	}
	h := uint64(0)
	var size int
	var ferr error
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			h++
			d := next(h)
			size = len(consensus.EncodeBlock(d.Block))
			b.StartTimer()
			if err := s.CommitHeight(d, nil, nil); err != nil {
				ferr = err
				b.FailNow()
			}
		}
	})
	if ferr != nil {
		return benchFigure{}, ferr
	}
	f, err := os.Create(filepath.Join(dir, "fsync-baseline"))
	if err != nil {
		return benchFigure{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	base := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			f.WriteAt(buf, 0) // overwrite in place, like Pebble's recycled WAL: no file growth to journal
			f.Sync()
		}
	})
	return benchFigure{fmt.Sprintf("store: synced batch per height (%d KB block)", size/1024), perOp(res), "µs", "overwrite+fsync of the same size", perOp(base)}, nil
}

func benchSimHeight(n int) (benchFigure, error) {
	const heights = 200
	start := time.Now()
	r := sim.Run(sim.Config{Validators: n, Behaviours: make([]sim.Behaviour, n), Seed: 1, Heights: heights, Ed25519: true})
	wall := time.Since(start)
	if r.Failed() {
		return benchFigure{}, fmt.Errorf("bench: simulation failed: %v", r.Violations)
	}
	perHeight := float64(wall.Microseconds()) / heights
	// Baseline: the Ed25519 work a height needs at minimum, n proposals+votes signed and n·(2n-1) verified.
	keys, g := benchKeys(1)
	msg := []byte("baseline vote sign bytes of about the same length as real ones....")
	sig := keys[0].Sign(msg)
	pub := g.Validators[0].PubKey
	one := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			consensus.Ed25519Verifier{}.Verify(&pub, msg, &sig)
		}
	})
	crypto := perOp(one) * float64(n*(2*n-1))
	return benchFigure{fmt.Sprintf("simulated height, %d validators (one goroutine, Ed25519)", n), perHeight, "µs", "its signature verifications alone", crypto}, nil
}

func benchCommitInterval() (benchFigure, error) {
	gap := func(b []sim.Behaviour) (float64, error) {
		r := sim.Run(sim.Config{Validators: len(b), Behaviours: b, Seed: 1, Heights: 200})
		if r.Failed() {
			return 0, fmt.Errorf("bench: simulation failed: %v", r.Violations)
		}
		t := r.CommitTimes
		return float64(t[len(t)-1]-t[2]) / float64(len(t)-3), nil
	}
	up, err := gap([]sim.Behaviour{sim.Honest, sim.Honest, sim.Honest, sim.Honest})
	if err != nil {
		return benchFigure{}, err
	}
	down, err := gap([]sim.Behaviour{sim.Honest, sim.Honest, sim.Honest, sim.Silent})
	if err != nil {
		return benchFigure{}, err
	}
	return benchFigure{"virtual ms between commits, 1 of 4 validators dead (links 1-10 ms)", down, "ms", "all 4 up", up}, nil
}
