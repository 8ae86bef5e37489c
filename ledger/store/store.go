// Package store keeps a validator's ledger on Pebble: the genesis, every committed block with its commit
// certificate, the validator set of the next height, the signer's state, and (from a later issue) the
// application's state.
//
// Contracts:
//
//   - A height is committed by one atomic, synced Pebble batch (CommitHeight): block, certificate, next
//     validator set, the height itself and the application's writes of that block. Height and the reads
//     show a height only after that batch's Sync returned, so nothing is shown that a crash could take back.
//   - The signer's state (consensus.SignState) is written synced (SaveSignState, or inside CommitHeight
//     when one Ready carries both) before the driver sends the messages it covers.
//   - Everything goes through Pebble's vfs.FS: tests pass vfs.NewCrashableMem() and crash it with
//     CrashClone, losing what was not synced; reopening then yields a consistent height (State) and the
//     last synced SignState, from which the core never double-signs.
//   - The Pebble format major version is pinned (FormatMajorVersion) so that a Pebble upgrade never
//     rewrites the data format on its own.
//
// Key layout (one byte of prefix per kind, heights as 8 bytes big-endian so they sort):
//
//	g          genesis
//	h          last committed height
//	b<height>  block (consensus.EncodeBlock)
//	c<height>  commit certificate (consensus.AppendCertificate)
//	v          validator set of the next height, with its proposer priorities
//	s          signer state
//	l          the signer's lock proof (locked block and the prevotes that locked it)
//	a<key>     application state (Batch)
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// FormatMajorVersion is the Pebble on-disk format this store creates and opens databases with: the newest
// non-experimental format of the pinned Pebble (v2.1.7). Changing it is a data migration, on purpose.
const FormatMajorVersion = pebble.FormatValueSeparation

var (
	// ErrNotFound is returned for a height or key the store does not have.
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt is returned when the stored data contradicts itself.
	ErrCorrupt = errors.New("store: corrupt")
	// ErrGenesis is returned when the store belongs to another chain, or has no genesis yet.
	ErrGenesis = errors.New("store: genesis")
	// ErrHeight is returned by CommitHeight for a block that is not the next height.
	ErrHeight = errors.New("store: height out of order")
)

var (
	keyGenesis    = []byte("g")
	keyHeight     = []byte("h")
	keyValidators = []byte("v")
	keySign       = []byte("s")
	keyLock       = []byte("l")
)

const (
	prefixBlock       = 'b'
	prefixCertificate = 'c'
	prefixApp         = 'a'
)

func heightKey(prefix byte, h uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], h)
	return k
}

// Options configure Open. The zero value opens a directory on the real filesystem with Pebble's defaults.
type Options struct {
	FS           vfs.FS       // default vfs.Default
	MemTableSize uint64       // default Pebble's (4 MiB); the simulator uses less per validator
	Logger       *slog.Logger // Pebble's log lines; default discards them
}

// Store is a validator's ledger storage. Its methods are safe for concurrent use; writes are meant to come
// from the one goroutine that drives consensus.
type Store struct {
	db      *pebble.DB
	height  atomic.Uint64
	genesis *consensus.Genesis
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts := &pebble.Options{
		FS:                 o.FS,
		FormatMajorVersion: FormatMajorVersion,
		MemTableSize:       o.MemTableSize,
		Logger:             pebbleLogger{logger},
	}
	// Blocks, signatures, hashes and keys do not compress: compressing them only costs CPU (Snappy was 5%
	// of a validator's profile at 10,000 tx/s).
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{db: db}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the genesis and height and checks that the last height is whole.
func (s *Store) load() error {
	if b, err := s.get(keyGenesis); err == nil {
		g := new(consensus.Genesis)
		if err := g.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("%w: genesis: %w", ErrCorrupt, err)
		}
		s.genesis = g
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	b, err := s.get(keyHeight)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(b) != 8 || s.genesis == nil {
		return fmt.Errorf("%w: height record of %d bytes, genesis present: %v", ErrCorrupt, len(b), s.genesis != nil)
	}
	h := binary.BigEndian.Uint64(b)
	for _, k := range [][]byte{heightKey(prefixBlock, h), heightKey(prefixCertificate, h), keyValidators} {
		if _, err := s.get(k); err != nil {
			return fmt.Errorf("%w: height %d without %q: %w", ErrCorrupt, h, k[0], err)
		}
	}
	s.height.Store(h)
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Init records the chain's genesis in a new store (synced). Opening an initialised store with the same
// genesis is a no-op; with another it is an error.
func (s *Store) Init(g *consensus.Genesis) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrGenesis, err)
	}
	if s.genesis != nil {
		if s.genesis.Hash() != g.Hash() {
			return fmt.Errorf("%w: store holds chain %q (genesis %s), not %q (genesis %s)", ErrGenesis,
				s.genesis.ChainID, s.genesis.Hash().Short(), g.ChainID, g.Hash().Short())
		}
		return nil
	}
	enc, _ := g.MarshalBinary()
	if err := s.db.Set(keyGenesis, enc, pebble.Sync); err != nil {
		return fmt.Errorf("store: write genesis: %w", err)
	}
	s.genesis = g
	return nil
}

// Genesis returns the chain's genesis, or ErrGenesis before Init.
func (s *Store) Genesis() (*consensus.Genesis, error) {
	if s.genesis == nil {
		return nil, fmt.Errorf("%w: store not initialised", ErrGenesis)
	}
	return s.genesis, nil
}

// Height returns the last committed height (0 before the first block).
func (s *Store) Height() uint64 { return s.height.Load() }

// State returns the state a consensus core starts from: the height after the last committed one, what it
// builds on, its validator set and the signer's last persisted state.
func (s *Store) State() (consensus.State, error) {
	if s.genesis == nil {
		return consensus.State{}, fmt.Errorf("%w: store not initialised", ErrGenesis)
	}
	st, err := s.genesis.State()
	if err != nil {
		return st, err
	}
	if h := s.Height(); h > 0 {
		b, err := s.Block(h)
		if err != nil {
			return st, err
		}
		vb, err := s.get(keyValidators)
		if err != nil {
			return st, err
		}
		vals, err := consensus.UnmarshalValidatorSet(vb)
		if err != nil {
			return st, fmt.Errorf("%w: validator set: %w", ErrCorrupt, err)
		}
		st = consensus.State{Height: h + 1, PrevHash: b.Hash(), PrevTime: b.Header.Time, Validators: vals}
	}
	switch sb, err := s.get(keySign); {
	case err == nil:
		if err := st.Sign.UnmarshalBinary(sb); err != nil {
			return st, fmt.Errorf("%w: sign state: %w", ErrCorrupt, err)
		}
	case !errors.Is(err, ErrNotFound):
		return st, err
	}
	switch lb, err := s.get(keyLock); {
	case err == nil:
		l, err := consensus.DecodeLockProof(lb)
		if err != nil {
			return st, fmt.Errorf("%w: lock proof: %w", ErrCorrupt, err)
		}
		if l.Prevotes.Height == st.Height {
			st.Lock = l
		}
	case !errors.Is(err, ErrNotFound):
		return st, err
	}
	return st, nil
}

// SaveSignState writes the signer's state and, if non-nil, its new lock proof, in one synced batch. It
// returns only once both are durable.
func (s *Store) SaveSignState(ss *consensus.SignState, lock *consensus.LockProof) error {
	enc, _ := ss.MarshalBinary()
	if lock == nil {
		if err := s.db.Set(keySign, enc, pebble.Sync); err != nil {
			return fmt.Errorf("store: write sign state: %w", err)
		}
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(keySign, enc, nil); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	if err := b.Set(keyLock, consensus.EncodeLockProof(lock), nil); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: write sign state and lock: %w", err)
	}
	return nil
}

// Batch is the application's view of a height's batch: writes to the application keyspace that commit
// atomically with the block.
type Batch struct{ b *pebble.Batch }

// Set writes key = value in the application keyspace.
func (b *Batch) Set(key, value []byte) error {
	return b.b.Set(append([]byte{prefixApp}, key...), value, nil)
}

// Delete removes key from the application keyspace.
func (b *Batch) Delete(key []byte) error {
	return b.b.Delete(append([]byte{prefixApp}, key...), nil)
}

// CommitHeight writes decided height d in one atomic, synced batch: block, certificate, the next height's
// validator set, the height, the signer's state if ss is non-nil (so a Ready that carries both costs one
// sync), and whatever app writes (it may be nil). The block must be the next height.
func (s *Store) CommitHeight(d *consensus.Decision, ss *consensus.SignState, app func(*Batch) error) error {
	h := d.Block.Header.Height
	if want := s.Height() + 1; h != want {
		return fmt.Errorf("%w: block at height %d, store expects %d", ErrHeight, h, want)
	}
	if d.Certificate.Height != h || d.Certificate.BlockHash != d.Hash {
		return fmt.Errorf("store: certificate (height %d, block %s) does not match block (height %d, %s)",
			d.Certificate.Height, d.Certificate.BlockHash.Short(), h, d.Hash.Short())
	}
	b := s.db.NewBatch()
	defer b.Close()
	vals, _ := d.Next.MarshalBinary()
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], h)
	sets := []struct{ k, v []byte }{
		{heightKey(prefixBlock, h), consensus.EncodeBlock(d.Block)},
		{heightKey(prefixCertificate, h), consensus.AppendCertificate(nil, d.Certificate)},
		{keyValidators, vals},
		{keyHeight, hb[:]},
	}
	if ss != nil {
		enc, _ := ss.MarshalBinary()
		sets = append(sets, struct{ k, v []byte }{keySign, enc})
	}
	for _, kv := range sets {
		if err := b.Set(kv.k, kv.v, nil); err != nil {
			return fmt.Errorf("store: batch: %w", err)
		}
	}
	if app != nil {
		if err := app(&Batch{b: b}); err != nil {
			return fmt.Errorf("store: application writes for height %d: %w", h, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: commit height %d: %w", h, err)
	}
	s.height.Store(h)
	return nil
}

// Block returns the committed block at height h.
func (s *Store) Block(h uint64) (*consensus.Block, error) {
	b, err := s.committed(prefixBlock, h)
	if err != nil {
		return nil, err
	}
	blk, err := consensus.DecodeBlock(b)
	if err != nil {
		return nil, fmt.Errorf("%w: block %d: %w", ErrCorrupt, h, err)
	}
	return blk, nil
}

// Certificate returns the commit certificate of height h.
func (s *Store) Certificate(h uint64) (*consensus.Certificate, error) {
	b, err := s.committed(prefixCertificate, h)
	if err != nil {
		return nil, err
	}
	c, err := consensus.DecodeCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %d: %w", ErrCorrupt, h, err)
	}
	return c, nil
}

// Commit returns height h's block and certificate: what a lagging peer needs.
func (s *Store) Commit(h uint64) (*consensus.Commit, error) {
	b, err := s.Block(h)
	if err != nil {
		return nil, err
	}
	c, err := s.Certificate(h)
	if err != nil {
		return nil, err
	}
	return &consensus.Commit{Block: b, Certificate: c}, nil
}

// AppGet reads key from the application keyspace.
func (s *Store) AppGet(key []byte) ([]byte, error) {
	return s.get(append([]byte{prefixApp}, key...))
}

// AppScan calls fn with each key (without the keyspace prefix) and value of the application keyspace in
// [lower, upper), in key order, until fn returns false or an error (which AppScan returns). The slices are
// valid only during the call.
func (s *Store) AppScan(lower, upper []byte, fn func(key, value []byte) (bool, error)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: append([]byte{prefixApp}, lower...),
		UpperBound: append([]byte{prefixApp}, upper...),
	})
	if err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("store: scan %q: %w", it.Key(), err)
		}
		more, err := fn(it.Key()[1:], v)
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	return nil
}

func (s *Store) committed(prefix byte, h uint64) ([]byte, error) {
	if h == 0 || h > s.Height() {
		return nil, fmt.Errorf("%w: height %d (committed: %d)", ErrNotFound, h, s.Height())
	}
	return s.get(heightKey(prefix, h))
}

func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %q: %w", key, err)
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Info(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("store: pebble fatal: "+format, args...))
}
