package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/shouldersnet/shoulders/ledger"
	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// LedgerStatus is GET /v1/ledger/status.
type LedgerStatus struct {
	ChainID       string                 `json:"chain_id"`
	Height        uint64                 `json:"height"`
	AppHash       string                 `json:"app_hash"`
	LastBlockHash string                 `json:"last_block_hash"`
	LastBlockTime time.Time              `json:"last_block_time"`
	Validators    []ledger.ValidatorView `json:"validators"`
	Validator     bool                   `json:"validator"` // this node votes
	Mempool       int                    `json:"mempool"`
	MinFee        state.Amount           `json:"min_fee"`
	Params        state.Params           `json:"params"`
}

// BlockView is GET /v1/ledger/blocks/{height}.
type BlockView struct {
	Height      uint64    `json:"height"`
	Hash        string    `json:"hash"`
	Time        time.Time `json:"time"`
	Round       int32     `json:"round"`
	Proposer    string    `json:"proposer"`
	PrevHash    string    `json:"prev_hash"`
	AppHash     string    `json:"app_hash"` // the app hash after the previous block
	TxsHash     string    `json:"txs_hash"`
	Txs         []BlockTx `json:"txs,omitempty"`
	TxHashes    []string  `json:"tx_hashes,omitempty"` // with ?txs=hashes, instead of Txs
	Certificate CertView  `json:"certificate"`
}

// BlockTx is one transaction of a block, with what became of it.
type BlockTx struct {
	state.TxView
	Code   string `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// CertView is a block's commit certificate: the round it was decided in and who signed it.
type CertView struct {
	Round   int32    `json:"round"`
	Signers []string `json:"signers"`
}

// AccountView is GET /v1/ledger/accounts/{address}.
type AccountView struct {
	Address string       `json:"address"`
	Balance state.Amount `json:"balance"`
	Nonce   uint64       `json:"nonce"`
	// PendingNonce is the nonce the account's next transaction needs: Nonce plus its transactions pending
	// in this node's mempool.
	PendingNonce uint64 `json:"pending_nonce"`
}

// TxStatus is GET /v1/ledger/txs/{hash}, and one result of POST /v1/ledger/txs.
type TxStatus struct {
	Hash string `json:"hash"`
	// Status is "committed", "pending" (in the mempool) or, for a submission, "refused".
	Status string        `json:"status"`
	Error  string        `json:"error,omitempty"` // why it was refused
	Height uint64        `json:"height,omitempty"`
	Index  *int          `json:"index,omitempty"` // position in its block, when committed
	Code   string        `json:"code,omitempty"`  // for a committed transaction: ok, or why it changed nothing
	Reason string        `json:"reason,omitempty"`
	Tx     *state.TxView `json:"tx,omitempty"`
}

// SubmitRequest is the body of POST /v1/ledger/txs: one transaction or many, each the base64 of its bytes.
type SubmitRequest struct {
	Tx  string   `json:"tx,omitempty"`
	Txs []string `json:"txs,omitempty"`
}

// SubmitResponse is the answer of POST /v1/ledger/txs.
type SubmitResponse struct {
	Results []TxStatus `json:"results"`
}

const (
	maxSubmitBody = 32 << 20
	maxWait       = 60 * time.Second
)

func (n *Node) ledgerHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/ledger/status", n.withLedger(n.getLedgerStatus))
	mux.HandleFunc("GET /v1/ledger/blocks/{height}", n.withLedger(n.getBlock))
	mux.HandleFunc("GET /v1/ledger/accounts/{address}", n.withLedger(n.getAccount))
	mux.HandleFunc("GET /v1/ledger/txs/{hash}", n.withLedger(n.getTx))
	mux.HandleFunc("POST /v1/ledger/txs", n.withLedger(n.mutating(n.postTxs)))
	mux.HandleFunc("GET /debug/consensus", n.withLedger(n.getConsensus))
	mux.HandleFunc("GET /debug/mempool", n.withLedger(n.getMempool))
	n.datanetHandlers(mux)
}

// withLedger answers 503 on a node without a ledger.
func (n *Node) withLedger(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.ledger == nil {
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "this node runs no ledger: its home has no " + ledger.GenesisFile})
			return
		}
		h(w, r)
	}
}

func (n *Node) getLedgerStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.LedgerStatus())
}

// LedgerStatus returns what GET /v1/ledger/status reports (the node must run a ledger).
func (n *Node) LedgerStatus() LedgerStatus {
	s := n.ledger.Driver().Status()
	return LedgerStatus{
		ChainID: n.ledger.ChainID(), Height: s.Height, AppHash: s.AppHash, LastBlockHash: s.LastBlockHash,
		LastBlockTime: s.LastBlockTime, Validators: s.Validators, Validator: s.Validator, Mempool: n.ledger.Mempool().Len(),
		MinFee: n.ledger.App().Params().MinFee,
		Params: n.ledger.App().Params(),
	}
}

// getBlock answers the block at a height; with ?wait=DURATION (at most 60s) it first waits for that height
// to be committed.
func (n *Node) getBlock(w http.ResponseWriter, r *http.Request) {
	h, err := strconv.ParseUint(r.PathValue("height"), 10, 64)
	if err != nil || h == 0 {
		badRequest(w, "height: %q is not a block height (1, 2, ...)", r.PathValue("height"))
		return
	}
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWait {
			badRequest(w, "wait: %q is not a duration from 0 to %v", s, maxWait)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		for {
			changed := n.ledger.Driver().Heights() // before the check, so a commit in between is not missed
			if n.ledger.Store().Height() >= h {
				break
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
			}
			break
		}
	}
	c, err := n.ledger.Store().Commit(h)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no block at height %d yet (the chain is at %d)", h, n.ledger.Store().Height())})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	switch r.URL.Query().Get("txs") {
	case "":
		writeJSON(w, http.StatusOK, n.blockView(c, false))
	case "hashes":
		writeJSON(w, http.StatusOK, n.blockView(c, true))
	default:
		badRequest(w, "txs: %q; want hashes (or nothing, for whole transactions)", r.URL.Query().Get("txs"))
	}
}

// blockView shows a commit; hashesOnly lists the transactions' hashes instead of decoding them.
func (n *Node) blockView(c *consensus.Commit, hashesOnly bool) BlockView {
	b := c.Block
	vals := n.ledger.Genesis().Validators
	name := func(i int) string {
		if i >= 0 && i < len(vals) {
			return vals[i].Address
		}
		return fmt.Sprintf("validator %d", i)
	}
	v := BlockView{
		Height: b.Header.Height, Hash: b.Hash().String(), Time: time.Unix(0, b.Header.Time).UTC(), Round: b.Header.Round,
		Proposer: name(int(b.Header.Proposer)), PrevHash: b.Header.PrevHash.String(), AppHash: b.Header.AppHash.String(),
		TxsHash: b.Header.TxsHash.String(), Txs: []BlockTx{},
		Certificate: CertView{Round: c.Certificate.Round, Signers: []string{}},
	}
	for i := range vals {
		if c.Certificate.Signers.Has(i) {
			v.Certificate.Signers = append(v.Certificate.Signers, name(i))
		}
	}
	if hashesOnly {
		v.Txs = nil
		v.TxHashes = make([]string, len(b.Txs))
		for i, raw := range b.Txs {
			v.TxHashes[i] = state.HashTx(raw).String()
		}
		return v
	}
	for _, raw := range b.Txs {
		bt := BlockTx{Code: "malformed"}
		if tx, err := state.DecodeTx(raw); err == nil {
			bt.TxView = tx.View()
		} else {
			bt.TxView = state.TxView{Hash: state.HashTx(raw)}
		}
		if res, err := n.ledger.App().TxResult(bt.Hash); err == nil && res.Height == b.Header.Height {
			bt.Code, bt.Reason = res.Code.String(), res.Reason
		}
		v.Txs = append(v.Txs, bt)
	}
	return v
}

func (n *Node) getAccount(w http.ResponseWriter, r *http.Request) {
	addr, err := state.ParseAddress(r.PathValue("address"))
	if err != nil {
		badRequest(w, "address: %v", err)
		return
	}
	acct, err := n.ledger.App().Account(addr)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	next, err := n.ledger.Mempool().NextNonce(addr)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, AccountView{
		Address: addr.String(), Balance: state.Amount(acct.Balance), Nonce: acct.Nonce,
		PendingNonce: next,
	})
}

func (n *Node) getTx(w http.ResponseWriter, r *http.Request) {
	h, err := state.ParseHash(r.PathValue("hash"))
	if err != nil {
		badRequest(w, "hash: %v", err)
		return
	}
	st, ok := n.txStatus(h)
	if !ok {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("transaction %s is neither committed nor pending on this node", h)})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// txStatus finds a transaction among the committed ones, then in the mempool.
func (n *Node) txStatus(h state.Hash) (TxStatus, bool) {
	if res, err := n.ledger.App().TxResult(h); err == nil {
		st := TxStatus{Hash: h.String(), Status: "committed", Height: res.Height, Index: &res.Index, Code: res.Code.String(), Reason: res.Reason}
		if b, err := n.ledger.Store().Block(res.Height); err == nil && res.Index < len(b.Txs) {
			if tx, err := state.DecodeTx(b.Txs[res.Index]); err == nil {
				view := tx.View()
				st.Tx = &view
			}
		}
		return st, true
	}
	if tx := n.ledger.Mempool().Get(h); tx != nil {
		view := tx.View()
		return TxStatus{Hash: h.String(), Status: "pending", Tx: &view}, true
	}
	return TxStatus{}, false
}

// postTxs admits transactions. With ?wait=true it answers once every admitted one is committed (or after
// 60 s, with the ones still pending marked so). A single transaction that is refused is a 400 with the
// reason; a batch always answers 200, with each transaction's fate.
func (n *Node) postTxs(w http.ResponseWriter, r *http.Request) {
	wait := false
	if s := r.URL.Query().Get("wait"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			badRequest(w, "wait: %q is not true or false", s)
			return
		}
		wait = b
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSubmitBody+1))
	if err != nil {
		badRequest(w, "body: %v", err)
		return
	}
	if len(body) > maxSubmitBody {
		badRequest(w, "body: over %d bytes", maxSubmitBody)
		return
	}
	var req SubmitRequest
	if err := json.Unmarshal(body, &req); err != nil {
		badRequest(w, "body: want {\"tx\": \"<base64>\"} or {\"txs\": [...]}: %v", err)
		return
	}
	encoded := req.Txs
	if req.Tx != "" {
		encoded = append([]string{req.Tx}, encoded...)
	}
	if len(encoded) == 0 {
		badRequest(w, "body: no transaction (give \"tx\" or \"txs\")")
		return
	}
	raws := make([][]byte, len(encoded))
	for i, e := range encoded {
		if raws[i], err = base64.StdEncoding.DecodeString(e); err != nil {
			badRequest(w, "txs[%d]: not base64: %v", i, err)
			return
		}
	}
	// Waiters are registered before Submit, so a commit that comes before the wait is not missed; the
	// ones never waited on (refused, or after the deadline) are released on return.
	var waits []func(context.Context) (state.TxResult, error)
	if wait {
		for _, raw := range raws {
			waits = append(waits, n.ledger.Driver().Waiter(state.HashTx(raw)))
		}
		defer func() {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			for _, wt := range waits {
				wt(done) // returns at once, and unregisters a waiter still registered
			}
		}()
	}
	results, err := n.ledger.Submit(raws)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	resp := SubmitResponse{Results: make([]TxStatus, len(results))}
	for i, res := range results {
		st := TxStatus{Hash: res.Hash.String(), Status: "pending"}
		if res.Err != nil {
			st.Status, st.Error = "refused", res.Err.Error()
		}
		resp.Results[i] = st
	}
	if len(results) == 1 && results[0].Err != nil {
		status := http.StatusBadRequest
		if errors.Is(results[0].Err, state.ErrStore) {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, ErrorResponse{Error: results[0].Err.Error()})
		return
	}
	if wait {
		ctx, cancel := context.WithTimeout(r.Context(), maxWait)
		defer cancel()
		for i, wt := range waits {
			if resp.Results[i].Status != "pending" {
				continue
			}
			if res, err := wt(ctx); err == nil {
				resp.Results[i].Status, resp.Results[i].Height, resp.Results[i].Index = "committed", res.Height, &res.Index
				resp.Results[i].Code, resp.Results[i].Reason = res.Code.String(), res.Reason
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (n *Node) getConsensus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.ledger.Driver().Debug())
}

func (n *Node) getMempool(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.ledger.Mempool().Snapshot(20))
}
