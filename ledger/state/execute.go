package state

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// ValidateBlock is the application's part of consensus.Config.ValidateBlock: the block must be the one after
// the last committed height, carry the app hash after it, and hold at most Params.MaxBlockTxs transactions of
// at most Params.MaxBlockBytes in all, each at most Params.MaxTxBytes and well formed (DecodeTx: a known kind,
// canonical bytes). Signatures, chains, fees, nonces and balances are not its business: a transaction that
// fails those is skipped by Execute and the block stays valid. It reads only memory.
func (a *App) ValidateBlock(b *consensus.Block) error {
	height, appHash := a.Height(), a.AppHash()
	if b.Header.Height != height+1 {
		return fmt.Errorf("%w: block at height %d, the application is at %d", ErrHeight, b.Header.Height, height)
	}
	if b.Header.AppHash != appHash {
		return fmt.Errorf("%w: header app_hash %s, the state after height %d hashes to %s", ErrAppHash, b.Header.AppHash, height, appHash)
	}
	p := &a.genesis.Params
	if len(b.Txs) > p.MaxBlockTxs {
		return fmt.Errorf("%w: %d transactions, max_block_txs is %d", ErrInvalidBlock, len(b.Txs), p.MaxBlockTxs)
	}
	total := 0
	for i, raw := range b.Txs {
		if len(raw) > p.MaxTxBytes {
			return fmt.Errorf("%w: tx %d has %d bytes, max_tx_bytes is %d", ErrInvalidBlock, i, len(raw), p.MaxTxBytes)
		}
		if total += len(raw); total > p.MaxBlockBytes {
			return fmt.Errorf("%w: transactions of more than %d bytes (max_block_bytes) by tx %d", ErrInvalidBlock, p.MaxBlockBytes, i)
		}
		if _, err := DecodeTx(raw); err != nil {
			return fmt.Errorf("%w: tx %d: %w", ErrInvalidBlock, i, err)
		}
	}
	return nil
}

// Result is what executing one block produced. It is read-only, and valid for Commit until another block is
// committed.
type Result struct {
	Height  uint64
	AppHash consensus.Hash // the app hash after this block: the next block's header carries it
	// Txs is one result per transaction of the block, in block order.
	Txs []TxResult
	// Touched lists the accounts the block changed, in the order the block first changed them; Accounts holds
	// their new states. The mempool re-checks the pending transactions of exactly these accounts.
	Touched  []Address
	Accounts []Account

	prevHash consensus.Hash
	genesis  consensus.Hash
	index    [][2][]byte // tx index writes (key, value)
	kv       [][2][]byte // datanet state writes (key, value), in first-write order
}

// Write passes every key/value pair that must be committed with the block to set, which is meant to be
// (*store.Batch).Set inside store.CommitHeight:
//
//	store.CommitHeight(decision, signState, func(b *store.Batch) error { return res.Write(b.Set) })
//
// The writes are the changed accounts, the transaction index entries and the meta record (height, app hash).
func (r *Result) Write(set func(key, value []byte) error) error {
	for i, addr := range r.Touched {
		if err := set(accountKey(addr), encodeAccount(r.Accounts[i])); err != nil {
			return err
		}
	}
	for _, kv := range r.kv {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, kv := range r.index {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	m := make([]byte, metaSize)
	binary.BigEndian.PutUint64(m, r.Height)
	copy(m[8:], r.AppHash[:])
	copy(m[40:], r.genesis[:])
	return set(keyMeta, m)
}

// entry is an account as the block being executed sees it.
type entry struct {
	acct  Account
	dirty bool
}

// exec is the state of one Execute: committed state plus the block's changes so far.
type exec struct {
	app      *App
	height   uint64 // of the block being executed
	accounts map[Address]*entry
	touched  []Address
	before   uint64 // sum of the touched accounts' balances before the block (invariants only)

	// kv holds the block's writes of other state (datanets), kvOrder their keys in first-write order.
	kv      map[string][]byte
	kvOrder []string
}

func (x *exec) get(addr Address) (*entry, error) {
	if e, ok := x.accounts[addr]; ok {
		return e, nil
	}
	acct, err := x.app.Account(addr)
	if err != nil {
		return nil, err
	}
	e := &entry{acct: acct}
	x.accounts[addr] = e
	return e, nil
}

// mark records that e (addr's entry) is about to change.
func (x *exec) mark(addr Address, e *entry) {
	if !e.dirty {
		e.dirty = true
		x.touched = append(x.touched, addr)
		if invariants {
			x.before += e.acct.Balance
		}
	}
}

// credit adds v to addr's balance. It cannot overflow: no balance exceeds the total supply, which fits a
// uint64 (Genesis.Validate), so an overflow is a broken invariant.
func (x *exec) credit(addr Address, v uint64) error {
	if v == 0 {
		return nil
	}
	e, err := x.get(addr)
	if err != nil {
		return err
	}
	x.mark(addr, e)
	var carry uint64
	e.acct.Balance, carry = bits.Add64(e.acct.Balance, v, 0)
	if carry != 0 {
		panic(fmt.Sprintf("state: invariant broken: balance of %s overflows (supply is not conserved)", addr))
	}
	return nil
}

// Execute runs block b (the block after the last committed one) against the committed state and returns what
// it produced, changing nothing that readers see: Commit does that, after the store has synced Result.Write.
// proposer is the address of the block's proposer (the validator at b.Header.Proposer), who receives the fees.
//
// known, which may be nil, returns an already decoded and verified transaction by hash (the mempool's Get):
// those are neither decoded nor verified again. The signatures of the rest are checked in one batch.
//
// Every transaction is applied in order, or skipped with a code and a reason when it is oversized, malformed,
// of an unknown kind, for another chain, badly signed, below the minimum fee, not at the sender's next nonce,
// or more than the sender can pay; a skipped transaction changes nothing. Execute fails only when the block
// is out of order, its header's app hash is not this node's (ErrAppHash: this node has diverged), or the
// store cannot be read (ErrStore); then nothing was applied and the driver must not go on.
func (a *App) Execute(b *consensus.Block, proposer Address, known func(Hash) *Tx) (*Result, error) {
	a.mu.RLock()
	height, prev := a.mu.height, a.mu.appHash
	a.mu.RUnlock()
	if b.Header.Height != height+1 {
		return nil, fmt.Errorf("%w: block at height %d, the application is at %d", ErrHeight, b.Header.Height, height)
	}
	if b.Header.AppHash != prev {
		return nil, fmt.Errorf("%w: block %d carries app_hash %s, this node computed %s after height %d",
			ErrAppHash, b.Header.Height, b.Header.AppHash, prev, height)
	}
	res := &Result{Height: b.Header.Height, prevHash: prev, genesis: a.genesisHash, Txs: make([]TxResult, len(b.Txs))}

	// Decode and check what needs no state; then verify, in one batch, the signatures of what is left.
	txs := make([]*Tx, len(b.Txs))
	var unverified []*Tx
	for i, raw := range b.Txs {
		h := HashTx(raw)
		res.Txs[i] = TxResult{Hash: h, Height: res.Height, Index: i}
		t, err := a.decode(raw, h, known)
		if err == nil {
			err = checkTx(t, a.genesis)
		}
		if err != nil {
			res.Txs[i].Code, res.Txs[i].Reason = codeReason(err)
			continue
		}
		txs[i] = t
		if !t.Verified() {
			unverified = append(unverified, t)
		}
	}
	if len(unverified) > 0 {
		VerifyBatch(unverified) // marks the valid ones verified
	}

	x := &exec{app: a, height: res.Height, accounts: make(map[Address]*entry, 2*len(b.Txs)+1), kv: map[string][]byte{}}
	for i, t := range txs {
		if t == nil {
			continue
		}
		if !t.Verified() {
			res.Txs[i].Code, res.Txs[i].Reason = CodeBadSignature, badSignature(t).Reason
			continue
		}
		if err := x.apply(t, proposer); err != nil {
			c, ok := CodeOf(err)
			if !ok {
				return nil, err // storage failure
			}
			res.Txs[i].Code, res.Txs[i].Reason = c, err.(*Error).Reason
		}
	}

	res.Touched = x.touched
	res.Accounts = make([]Account, len(x.touched))
	var after uint64
	for i, addr := range x.touched {
		res.Accounts[i] = x.accounts[addr].acct
		after += res.Accounts[i].Balance
	}
	if invariants && after != x.before {
		panic(fmt.Sprintf("state: invariant broken: block %d changes the touched accounts' total from %d to %d", res.Height, x.before, after))
	}
	for _, k := range x.kvOrder {
		res.kv = append(res.kv, [2][]byte{[]byte(k), x.kv[k]})
	}
	if err := a.indexResults(res); err != nil {
		return nil, err
	}
	res.AppHash = blockHash(prev, res)
	return res, nil
}

// decode returns the transaction with hash h: the known one, or raw decoded (checking the chain's size limit
// first).
func (a *App) decode(raw []byte, h Hash, known func(Hash) *Tx) (*Tx, error) {
	if known != nil {
		if t := known(h); t != nil && t.Hash() == h {
			return t, nil
		}
	}
	if len(raw) > a.genesis.Params.MaxTxBytes {
		return nil, refuse(CodeOversized, "%d bytes, the chain's max_tx_bytes is %d", len(raw), a.genesis.Params.MaxTxBytes)
	}
	return DecodeTx(raw)
}

func codeReason(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Reason
	}
	return CodeMalformed, err.Error()
}

// apply applies one decoded, verified transaction of this chain, or returns why it cannot be applied (an
// *Error, having changed nothing) or a storage failure.
func (x *exec) apply(t *Tx, proposer Address) error {
	s, err := x.get(t.Sender)
	if err != nil {
		return err
	}
	if t.Nonce != s.acct.Nonce {
		return refuse(CodeBadNonce, "nonce %d, the sender's next nonce is %d", t.Nonce, s.acct.Nonce)
	}
	cost, err := t.Cost()
	if err != nil {
		return err
	}
	if cost > s.acct.Balance {
		return refuse(CodeInsufficientFunds, "the sender has %d, the transaction needs %d (%s %d + fee %d)",
			s.acct.Balance, cost, t.Kind(), t.Payload.spend(), t.Fee)
	}
	var writes func() error
	if _, ok := t.Payload.(*Transfer); !ok {
		if writes, err = x.prepareDatanet(t); err != nil {
			return err
		}
	}
	// Every check has passed: from here on the transaction applies in full.
	x.mark(t.Sender, s)
	s.acct.Balance -= cost
	s.acct.Nonce++
	switch p := t.Payload.(type) {
	case *Transfer:
		if err := x.credit(p.To, p.Amount); err != nil {
			return err
		}
	case *DatanetCreate, *DatanetContribute, *DatanetApprove, *DatanetReject:
		if err := writes(); err != nil {
			return err
		}
	default:
		panic(fmt.Sprintf("state: kind %s decodes but has no rule to apply it", t.Kind()))
	}
	return x.credit(proposer, t.Fee)
}

// indexResults adds the transaction index writes to res: every successful transaction, and every failed one
// whose hash has no entry yet (in the store or earlier in this block), so that a failure never hides a
// success: the same bytes included again fail on their nonce.
func (a *App) indexResults(res *Result) error {
	inBlock := make(map[Hash]bool, len(res.Txs)) // hash -> its entry in this block is a success
	for _, r := range res.Txs {
		if r.Code != CodeOK {
			if _, seen := inBlock[r.Hash]; seen {
				continue
			}
			switch _, err := a.store.AppGet(txKey(r.Hash)); {
			case err == nil:
				continue
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("%w: tx index %s: %w", ErrStore, r.Hash, err)
			}
		} else if inBlock[r.Hash] {
			continue
		}
		inBlock[r.Hash] = r.Code == CodeOK
		v := make([]byte, 13, 13+len(r.Reason))
		binary.BigEndian.PutUint64(v, r.Height)
		binary.BigEndian.PutUint32(v[8:], uint32(r.Index))
		v[12] = byte(r.Code)
		res.index = append(res.index, [2][]byte{txKey(r.Hash), append(v, r.Reason...)})
	}
	return nil
}

// blockHash links the block's changes onto the previous app hash:
//
//	SHA-256(blockDomain || prev || height || n || n×(address || balance || nonce) || m || m×(tx hash || code))
//
// over the changed accounts in first-change order and every transaction's result code in block order
// (counts and numbers big-endian, n and m 4 bytes), followed, when the block changed other state (datanets),
// by k (4 bytes) and k×(key length (2) || key || SHA-256 of the value) in first-write order. Reasons and the
// index layout stay out, so rewording a reason never forks the chain.
func blockHash(prev consensus.Hash, r *Result) consensus.Hash {
	buf := make([]byte, 0, len(blockDomain)+32+8+4+len(r.Touched)*(32+16)+4+len(r.Txs)*33)
	buf = append(buf, blockDomain...)
	buf = append(buf, prev[:]...)
	buf = binary.BigEndian.AppendUint64(buf, r.Height)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Touched)))
	for i, addr := range r.Touched {
		buf = append(buf, addr[:]...)
		buf = binary.BigEndian.AppendUint64(buf, r.Accounts[i].Balance)
		buf = binary.BigEndian.AppendUint64(buf, r.Accounts[i].Nonce)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Txs)))
	for _, t := range r.Txs {
		buf = append(buf, t.Hash[:]...)
		buf = append(buf, byte(t.Code))
	}
	if len(r.kv) > 0 {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.kv)))
		for _, kv := range r.kv {
			buf = binary.BigEndian.AppendUint16(buf, uint16(len(kv[0])))
			buf = append(buf, kv[0]...)
			sum := sha256.Sum256(kv[1])
			buf = append(buf, sum[:]...)
		}
	}
	return sha256.Sum256(buf)
}

// Commit makes the result of Execute visible: the height, the app hash and the changed accounts. Call it
// only after the store batch with Result.Write has synced (store.CommitHeight returned nil). It fails, changing
// nothing, when res is not the result for the block after the last committed one.
func (a *App) Commit(res *Result) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if res.Height != a.mu.height+1 || res.prevHash != a.mu.appHash {
		return fmt.Errorf("%w: result of height %d on app hash %s, the application is at height %d, app hash %s",
			ErrHeight, res.Height, res.prevHash, a.mu.height, a.mu.appHash)
	}
	for i, addr := range res.Touched {
		a.mu.cache.put(addr, res.Accounts[i])
	}
	a.mu.height = res.Height
	a.mu.appHash = res.AppHash
	return nil
}
