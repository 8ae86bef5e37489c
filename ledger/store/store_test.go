package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// chain builds a genesis and decisions that form a chain on it. The store does not check signatures,
// so the certificates carry placeholder ones.
type chain struct {
	g    *consensus.Genesis
	vals *consensus.ValidatorSet
	prev consensus.Hash
	time int64
	h    uint64
}

func newChain(t testing.TB) *chain {
	g := &consensus.Genesis{ChainID: "store-test", Time: 100, AppHash: sha256.Sum256([]byte("app"))}
	for i := range 4 {
		seed := sha256.Sum256([]byte{byte(i)})
		pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
		var pk consensus.PublicKey
		copy(pk[:], pub)
		g.Validators = append(g.Validators, consensus.Validator{PubKey: pk, Power: int64(i + 1)})
	}
	vals, err := consensus.NewValidatorSet(g.Validators)
	if err != nil {
		t.Fatal(err)
	}
	return &chain{g: g, vals: vals, prev: g.Hash(), time: g.Time}
}

// next returns the decision of the next height, with ntx transactions of txSize bytes.
func (c *chain) next(ntx, txSize int) *consensus.Decision {
	d := c.candidate(ntx, txSize)
	c.h++
	c.time += 1e9
	c.vals, c.prev = d.Next, d.Hash
	return d
}

// candidate returns a decision for the next height without extending the chain.
func (c *chain) candidate(ntx, txSize int) *consensus.Decision {
	h := c.h + 1
	b := &consensus.Block{Header: consensus.Header{Height: h, Round: 0, Proposer: uint16(c.vals.Proposer(0)), Time: c.time + 1e9, PrevHash: c.prev}}
	for i := range ntx {
		tx := bytes.Repeat([]byte{byte(i), byte(h)}, txSize/2)
		b.Txs = append(b.Txs, tx)
	}
	b.Header.TxsHash = consensus.TxsHash(b.Txs)
	hash := b.Hash()
	cert := &consensus.Certificate{Height: h, BlockHash: hash, Signers: consensus.NewBitmap(c.vals.Len())}
	for i := range c.vals.Len() {
		cert.Signers.Set(i)
		cert.Signatures = append(cert.Signatures, consensus.Signature{byte(i), byte(h)})
	}
	return &consensus.Decision{Block: b, Hash: hash, Certificate: cert, Next: c.vals.Next()}
}

func open(t testing.TB, fs vfs.FS) *Store {
	s, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommitAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs)
	c := newChain(t)
	if err := s.Init(c.g); err != nil {
		t.Fatal(err)
	}
	st, err := s.State()
	if err != nil || st.Height != 1 || st.PrevHash != c.g.Hash() || st.Sign.Step != 0 {
		t.Fatalf("fresh state %+v, %v", st, err)
	}
	var decisions []*consensus.Decision
	for range 5 {
		d := c.next(3, 40)
		decisions = append(decisions, d)
		if err := s.CommitHeight(d, nil, func(b *Batch) error { return b.Set([]byte("k"), d.Hash[:]) }); err != nil {
			t.Fatal(err)
		}
	}
	ss := consensus.SignState{Height: 6, Round: 2, Step: consensus.StepPrevote, POLRound: -1, LockedRound: -1}
	if err := s.SaveSignState(&ss, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, fs)
	defer s.Close()
	if err := s.Init(c.g); err != nil {
		t.Fatalf("re-init with the same genesis: %v", err)
	}
	if s.Height() != 5 {
		t.Fatalf("height %d after reopen", s.Height())
	}
	st, err = s.State()
	if err != nil {
		t.Fatal(err)
	}
	last := decisions[4]
	if st.Height != 6 || st.PrevHash != last.Hash || st.PrevTime != last.Block.Header.Time || st.Sign != ss {
		t.Fatalf("state %+v", st)
	}
	if st.Validators.Proposer(0) != c.vals.Proposer(0) {
		t.Fatal("validator set priorities not restored")
	}
	for _, d := range decisions {
		got, err := s.Commit(d.Block.Header.Height)
		if err != nil {
			t.Fatal(err)
		}
		if got.Block.Hash() != d.Hash || got.Certificate.BlockHash != d.Hash || len(got.Certificate.Signatures) != 4 {
			t.Fatalf("height %d read back wrong", d.Block.Header.Height)
		}
	}
	if v, err := s.AppGet([]byte("k")); err != nil || !bytes.Equal(v, last.Hash[:]) {
		t.Fatalf("app state %x, %v", v, err)
	}
	if _, err := s.Block(6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("block beyond the height: %v", err)
	}
	if got := s.db.FormatMajorVersion(); got != FormatMajorVersion {
		t.Fatalf("format %v, pinned %v", got, FormatMajorVersion)
	}
}

func TestRejects(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs)
	defer s.Close()
	c := newChain(t)
	if _, err := s.State(); !errors.Is(err, ErrGenesis) {
		t.Fatalf("state before init: %v", err)
	}
	s.Init(c.g)
	other := *c.g
	other.ChainID = "other"
	if err := s.Init(&other); !errors.Is(err, ErrGenesis) {
		t.Fatalf("another chain's genesis: %v", err)
	}
	c.next(1, 10) // skip height 1
	if err := s.CommitHeight(c.next(1, 10), nil, nil); !errors.Is(err, ErrHeight) {
		t.Fatalf("height 2 before 1: %v", err)
	}
	boom := errors.New("boom")
	c2 := newChain(t)
	if err := s.CommitHeight(c2.next(1, 10), nil, func(*Batch) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing application writes: %v", err)
	}
	if s.Height() != 0 {
		t.Fatal("a failed batch committed a height")
	}
}

func TestCorruptionDetected(t *testing.T) {
	fs := vfs.NewMem()
	s := open(t, fs)
	c := newChain(t)
	s.Init(c.g)
	s.CommitHeight(c.next(1, 10), nil, nil)
	s.db.Delete(heightKey(prefixCertificate, 1), pebble.Sync)
	s.Close()
	if _, err := Open("db", Options{FS: fs}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("height without its certificate: %v", err)
	}
}

// TestCrashKeepsWhatWasSynced runs random sequences of sign-state saves and height commits on a crashable
// filesystem and crashes at random points, keeping a random share of the unsynced data. After every
// crash the store must hold exactly what was acknowledged: the last committed height, whole, and the
// last saved sign state and lock.
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 40 {
		fs := vfs.NewCrashableMem()
		s := open(t, fs)
		c := newChain(t)
		s.Init(c.g)
		var lastSign consensus.SignState
		var lastLock *consensus.LockProof
		var lastHash consensus.Hash
		var height uint64
		for crash := 0; crash < 3; crash++ {
			for op := rng.IntN(12); op > 0; op-- {
				if rng.IntN(2) == 0 {
					d := c.next(1+rng.IntN(4), 10+rng.IntN(500))
					if err := s.CommitHeight(d, nil, nil); err != nil {
						t.Fatal(err)
					}
					height, lastHash = d.Block.Header.Height, d.Hash
					continue
				}
				ss := consensus.SignState{Height: height + 1, Round: int32(rng.IntN(5)), Step: consensus.StepPrevote, POLRound: -1, LockedRound: -1}
				var lock *consensus.LockProof
				if rng.IntN(2) == 0 {
					d := c.candidate(1, 20)
					ss.Step, ss.LockedRound, ss.LockedHash = consensus.StepPrecommit, ss.Round, d.Hash
					d.Certificate.Round = ss.Round
					lock = &consensus.LockProof{Block: d.Block, Prevotes: d.Certificate}
				}
				if err := s.SaveSignState(&ss, lock); err != nil {
					t.Fatal(err)
				}
				lastSign = ss
				if lock != nil {
					lastLock = lock
				}
			}
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			s.Close()
			fs = clone
			s = open(t, fs)
			st, err := s.State()
			if err != nil {
				t.Fatalf("trial %d: state after crash: %v", trial, err)
			}
			if s.Height() != height || (height > 0 && st.PrevHash != lastHash) {
				t.Fatalf("trial %d: height %d (%s) after crash, %d (%s) was committed", trial, s.Height(), st.PrevHash.Short(), height, lastHash.Short())
			}
			if st.Sign != lastSign {
				t.Fatalf("trial %d: sign state %+v after crash, %+v was saved", trial, st.Sign, lastSign)
			}
			if lastLock != nil && lastLock.Prevotes.Height == st.Height && (st.Lock == nil || st.Lock.Block.Hash() != lastLock.Block.Hash()) {
				t.Fatalf("trial %d: lock proof lost", trial)
			}
		}
		s.Close()
	}
}

// TestCrashableFSLosesUnsynced makes sure the crash test above can fail: a write that is not synced does
// not survive a crash that keeps no unsynced data.
func TestCrashableFSLosesUnsynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := open(t, fs)
	s.db.Set([]byte("x"), []byte("unsynced"), pebble.NoSync)
	clone := fs.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	s = open(t, clone)
	defer s.Close()
	if _, err := s.get([]byte("x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unsynced write survived the crash: %v", err)
	}
}

// TestConcurrentReads reads heights while they are committed (run with -race).
func TestConcurrentReads(t *testing.T) {
	s := open(t, vfs.NewMem())
	defer s.Close()
	c := newChain(t)
	s.Init(c.g)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if h := s.Height(); h > 0 {
					if _, err := s.Commit(h); err != nil {
						panic(fmt.Sprintf("height %d visible but unreadable: %v", h, err))
					}
				}
			}
		})
	}
	for range 50 {
		if err := s.CommitHeight(c.next(2, 30), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
