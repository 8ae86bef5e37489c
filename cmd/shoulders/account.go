package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
)

// account is what a verb that signs transactions needs: the key of the node at --home (its key is its
// account), a client for that node's API (or --api), the chain's status, and the account's next nonce.
type account struct {
	key    ed25519.PrivateKey
	addr   state.Address
	c      *node.Client
	status node.LedgerStatus
	nonce  uint64 // the nonce of the next transaction this account signs
}

// openAccount loads the key at home and asks the node for the chain and the account's next nonce.
func openAccount(ctx context.Context, home string, f *clientFlags) (*account, error) {
	libkey, err := node.LoadKey(filepath.Join(home, node.KeyFile))
	if err != nil {
		return nil, err
	}
	key, err := state.KeyFromLibp2p(libkey)
	if err != nil {
		return nil, err
	}
	if f.api == "" {
		if cfg, err := node.LoadConfig(home); err == nil {
			f.api = "http://" + cfg.API
		}
	}
	c, err := f.client()
	if err != nil {
		return nil, err
	}
	a := &account{key: key, addr: state.AddressFromKey(key), c: c.WithToken(node.LoadToken(home))}
	if a.status, err = a.c.LedgerStatus(ctx); err != nil {
		return nil, err
	}
	acct, err := a.c.Account(ctx, a.addr.String())
	if err != nil {
		return nil, err
	}
	a.nonce = acct.PendingNonce
	return a, nil
}

// sign signs a payload with the account's next nonce and the given fee.
func (a *account) sign(fee uint64, p state.Payload) ([]byte, error) {
	raw, err := state.Sign(a.key, a.status.ChainID, a.nonce, fee, p)
	if err != nil {
		return nil, err
	}
	a.nonce++
	return raw, nil
}

// submit signs the payloads with consecutive nonces and the chain's minimum fee, submits them together
// and, with wait, returns once each is committed (or a minute passed). A refusal by the node is an error
// naming what it said.
func (a *account) submit(ctx context.Context, wait bool, payloads ...state.Payload) ([]node.TxStatus, error) {
	raws := make([][]byte, len(payloads))
	for i, p := range payloads {
		raw, err := a.sign(uint64(a.status.MinFee), p)
		if err != nil {
			return nil, err
		}
		raws[i] = raw
	}
	res, err := a.c.Submit(ctx, raws, wait)
	if err != nil {
		var apiErr *node.APIError
		if errors.As(err, &apiErr) {
			return nil, fmt.Errorf("the node refused the transaction: %s", apiErr.Message)
		}
		return nil, err
	}
	if len(res) != len(raws) {
		return nil, fmt.Errorf("the node answered %d results for %d transactions", len(res), len(raws))
	}
	return res, nil
}

// txOutcome says in words what became of a submitted transaction that did not apply, or "" when it did.
func txOutcome(st node.TxStatus) string {
	switch {
	case st.Status == "committed" && st.Code == "ok":
		return ""
	case st.Status == "committed":
		return fmt.Sprintf("committed at height %d but refused: %s: %s", st.Height, st.Code, st.Reason)
	case st.Status == "refused":
		return "refused by the node: " + st.Error
	}
	return fmt.Sprintf("not committed within a minute (transaction %s is %s); `shoulders ledger tx %s` will tell", st.Hash, st.Status, st.Hash)
}
