package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// Reader reads the application's committed keys. *store.Store satisfies it. A missing key is an error
// wrapping store.ErrNotFound; any other error is a storage failure.
type Reader interface {
	AppGet(key []byte) ([]byte, error)
	// AppScan calls fn with each key and value in [lower, upper) in key order until fn returns false or an
	// error; the queries use it, execution never does.
	AppScan(lower, upper []byte, fn func(key, value []byte) (bool, error)) error
}

// Account is an account's state.
type Account struct {
	Balance uint64 `json:"balance,string"`
	Nonce   uint64 `json:"nonce"` // the nonce its next transaction must carry
}

// Options tune an App. The zero value is fine.
type Options struct {
	// CachedAccounts bounds the accounts kept in memory (the rest are read from the store). Default 65536.
	CachedAccounts int
}

// ErrHeight is returned (wrapped) when a block is not the one after the last committed height, or a Result is
// committed out of turn.
var ErrHeight = errors.New("state: block out of order")

// ErrAppHash is returned (wrapped) for a block whose header carries another app hash than this node computed
// for the previous block. From ValidateBlock it means the proposer is wrong; from Execute, on a block that was
// decided, it means this node's state has diverged from the chain's and it must stop.
var ErrAppHash = errors.New("state: app hash mismatch")

// ErrInvalidBlock is returned (wrapped, naming the transaction and the rule) by ValidateBlock.
var ErrInvalidBlock = errors.New("state: invalid block")

// ErrTxNotFound is returned by TxResult for a hash that no committed block carried.
var ErrTxNotFound = errors.New("state: transaction not found")

// App is the deterministic application. See the package doc for the contracts; in short: one goroutine (the
// driver) calls ValidateBlock, Execute and Commit; the queries (Account, TxResult, AppHash, Height, CheckTx)
// are safe from any goroutine at any time and see committed state only.
type App struct {
	genesis     *Genesis
	genesisHash consensus.Hash
	alloc       map[Address]uint64 // genesis balances; read-only after New
	store       Reader

	mu struct {
		sync.RWMutex
		height  uint64
		appHash consensus.Hash
		cache   accountCache
	}
}

// New builds the application for genesis g over the committed state in r. On a store that has committed
// blocks, it resumes from the last one (its height and app hash are stored with every block); on an empty
// store it starts at height 0 with g's app hash. It fails when the store holds another genesis' state.
func New(g *Genesis, r Reader, o Options) (*App, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if o.CachedAccounts <= 0 {
		o.CachedAccounts = 1 << 16
	}
	a := &App{genesis: g, genesisHash: g.AppHash(), alloc: make(map[Address]uint64, len(g.Accounts)), store: r}
	for _, acct := range g.Accounts {
		a.alloc[acct.Address] = uint64(acct.Balance)
	}
	a.mu.cache = newAccountCache(o.CachedAccounts)
	a.mu.appHash = a.genesisHash
	m, err := r.AppGet(keyMeta)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return a, nil
	case err != nil:
		return nil, fmt.Errorf("%w: meta: %w", ErrStore, err)
	}
	if len(m) != metaSize {
		return nil, fmt.Errorf("%w: meta record of %d bytes, want %d", ErrStore, len(m), metaSize)
	}
	if consensus.Hash(m[40:72]) != a.genesisHash {
		return nil, fmt.Errorf("state: the store holds the state of genesis %x, not of this genesis (%x)", m[40:72], a.genesisHash[:])
	}
	a.mu.height = binary.BigEndian.Uint64(m)
	a.mu.appHash = consensus.Hash(m[8:40])
	return a, nil
}

// Genesis returns the genesis the app was built from (read-only).
func (a *App) Genesis() *Genesis { return a.genesis }

// ChainID returns the chain's ID.
func (a *App) ChainID() string { return a.genesis.ChainID }

// Params returns the chain's parameters.
func (a *App) Params() Params { return a.genesis.Params }

// Height returns the last committed height (0 before the first block).
func (a *App) Height() uint64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.mu.height
}

// AppHash returns the app hash after the last committed block: what the next block's header must carry.
func (a *App) AppHash() consensus.Hash {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.mu.appHash
}

// Account returns addr's committed state; an account never seen has a zero balance and nonce. The error is
// non-nil only for a storage failure (wrapping ErrStore).
func (a *App) Account(addr Address) (Account, error) {
	a.mu.RLock()
	acct, ok := a.mu.cache.get(addr)
	a.mu.RUnlock()
	if ok {
		return acct, nil
	}
	return a.readAccount(addr)
}

// readAccount reads addr from the store, falling back to the genesis allocation. Accounts are never deleted,
// so an account missing from the store has never been written since genesis.
func (a *App) readAccount(addr Address) (Account, error) {
	v, err := a.store.AppGet(accountKey(addr))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Account{Balance: a.alloc[addr]}, nil
	case err != nil:
		return Account{}, fmt.Errorf("%w: account %s: %w", ErrStore, addr, err)
	case len(v) != accountSize:
		return Account{}, fmt.Errorf("%w: account %s: record of %d bytes, want %d", ErrStore, addr, len(v), accountSize)
	}
	return Account{Balance: binary.BigEndian.Uint64(v), Nonce: binary.BigEndian.Uint64(v[8:])}, nil
}

// TxResult is what became of a transaction that a committed block carried: where it is and whether it was
// applied. Reason is empty for CodeOK.
type TxResult struct {
	Hash   Hash   `json:"hash"`
	Height uint64 `json:"height"`
	Index  int    `json:"index"` // position in the block
	Code   Code   `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// TxResult looks a transaction up in the index. A hash carried by several blocks (the same bytes included
// again, which fails on its nonce) reports its successful execution if it had one, else its first failure.
// It returns an error wrapping ErrTxNotFound for a hash no committed block carried.
func (a *App) TxResult(h Hash) (TxResult, error) {
	v, err := a.store.AppGet(txKey(h))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return TxResult{}, fmt.Errorf("%w: %s", ErrTxNotFound, h)
	case err != nil:
		return TxResult{}, fmt.Errorf("%w: tx %s: %w", ErrStore, h, err)
	case len(v) < 13:
		return TxResult{}, fmt.Errorf("%w: tx %s: index record of %d bytes", ErrStore, h, len(v))
	}
	return TxResult{
		Hash:   h,
		Height: binary.BigEndian.Uint64(v),
		Index:  int(binary.BigEndian.Uint32(v[8:])),
		Code:   Code(v[12]),
		Reason: string(v[13:]),
	}, nil
}

// CheckTx applies the chain's stateless rules to a decoded transaction: its size, its chain and the minimum
// fee. It does not check the signature (Verify) or the sender's state (the mempool and Execute do).
func (a *App) CheckTx(t *Tx) error { return checkTx(t, a.genesis) }

func checkTx(t *Tx, g *Genesis) error {
	if t.Size() > g.Params.MaxTxBytes {
		return refuse(CodeOversized, "%d bytes, the chain's max_tx_bytes is %d", t.Size(), g.Params.MaxTxBytes)
	}
	if t.ChainID != g.ChainID {
		return refuse(CodeWrongChain, "chain_id %q, this chain is %q", t.ChainID, g.ChainID)
	}
	if t.Fee < uint64(g.Params.MinFee) {
		return refuse(CodeFeeTooLow, "fee %d, the chain's min_fee is %d", t.Fee, uint64(g.Params.MinFee))
	}
	return nil
}

// Key layout inside the store's application keyspace (the store adds its own 'a' prefix):
//
//	M            meta: last height (8 bytes BE), its app hash (32), the genesis app hash (32)
//	A<address>   account: balance (8 bytes BE), nonce (8)
//	T<tx hash>   tx index: height (8), index in block (4), code (1), reason (the rest)
var keyMeta = []byte("M")

const (
	prefixAccount = 'A'
	prefixTx      = 'T'
	metaSize      = 8 + 32 + 32
	accountSize   = 16
)

func accountKey(addr Address) []byte {
	k := make([]byte, 1+len(addr))
	k[0] = prefixAccount
	copy(k[1:], addr[:])
	return k
}

func txKey(h Hash) []byte {
	k := make([]byte, 1+len(h))
	k[0] = prefixTx
	copy(k[1:], h[:])
	return k
}

func encodeAccount(acct Account) []byte {
	v := make([]byte, accountSize)
	binary.BigEndian.PutUint64(v, acct.Balance)
	binary.BigEndian.PutUint64(v[8:], acct.Nonce)
	return v
}

// accountCache keeps recently written accounts in two generations: lookups check the young one, then the
// old; when the young one fills up it becomes the old one and the old one is dropped. It approximates LRU
// without per-read bookkeeping, so readers need only the App's read lock. It holds committed values only.
type accountCache struct {
	young, old map[Address]Account
	limit      int // per generation
}

func newAccountCache(n int) accountCache {
	l := max(n/2, 1)
	return accountCache{young: make(map[Address]Account, l), old: map[Address]Account{}, limit: l}
}

func (c *accountCache) get(addr Address) (Account, bool) {
	if v, ok := c.young[addr]; ok {
		return v, true
	}
	v, ok := c.old[addr]
	return v, ok
}

func (c *accountCache) put(addr Address, acct Account) {
	if len(c.young) >= c.limit {
		if _, ok := c.young[addr]; !ok {
			c.old, c.young = c.young, make(map[Address]Account, c.limit)
		}
	}
	c.young[addr] = acct // an older copy in the old generation is shadowed, and dropped at the next rotation
}
