package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/ledger"
	"github.com/shouldersnet/shoulders/ledger/state"
)

// ledgerNode starts a node that is the one validator of its own chain, with alice funded.
func ledgerNode(t *testing.T, alice ed25519.PrivateKey) *running {
	t.Helper()
	home := initHome(t, t.TempDir(), nil, "")
	key, err := LoadKey(filepath.Join(home, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	cfg, _ := LoadConfig(home)
	cfg.Config.Roles = []string{"validator"}
	if err := SaveConfig(home, cfg.Config); err != nil {
		t.Fatal(err)
	}
	app, _ := json.Marshal(state.Genesis{ChainID: "api-test", Params: state.DefaultParams(),
		Accounts: []state.GenesisAccount{{Address: state.AddressFromKey(alice), Balance: 1000}}})
	g := &ledger.Genesis{ChainID: "api-test", Time: time.Now().UTC(), App: app,
		Validators: []ledger.GenesisValidator{{Address: id.String(), Power: 1}}}
	if err := g.Write(filepath.Join(home, ledger.GenesisFile)); err != nil {
		t.Fatal(err)
	}
	return start(t, home, Options{})
}

func TestLedgerAPI(t *testing.T) {
	_, alice, _ := ed25519.GenerateKey(rand.Reader)
	_, bobKey, _ := ed25519.GenerateKey(rand.Reader)
	bob := state.AddressFromKey(bobKey)
	n := ledgerNode(t, alice)
	c, _ := NewClient(n.APIURL())
	ctx := context.Background()
	if _, err := c.Block(ctx, 1, 30*time.Second, false); err != nil {
		t.Fatalf("the chain does not start: %v", err)
	}

	st, err := c.LedgerStatus(ctx)
	if err != nil || st.ChainID != "api-test" || !st.Validator || len(st.Validators) != 1 || st.Height < 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
	sign := func(nonce, amount uint64) []byte {
		raw, err := state.SignTransfer(alice, "api-test", nonce, 1, bob, amount)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	// A refused transaction is a 400 that says why, and nothing changes.
	_, err = c.Submit(ctx, [][]byte{sign(3, 10)}, false)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "bad_nonce") {
		t.Fatalf("a wrong nonce: %v", err)
	}
	_, err = c.Submit(ctx, [][]byte{sign(0, 5000)}, false)
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "insufficient_funds") {
		t.Fatalf("more than the balance: %v", err)
	}
	resp, _ := http.Post(n.APIURL()+"/v1/ledger/txs", "application/json", strings.NewReader(`{"tx": "not base64!"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("garbage: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if acct, _ := c.Account(ctx, state.AddressFromKey(alice).String()); acct.Balance != 1000 || acct.Nonce != 0 || acct.PendingNonce != 0 {
		t.Fatalf("after refusals: %+v", acct)
	}

	// A good one, waited for: committed, with its height; the accounts and the block show it.
	res, err := c.Submit(ctx, [][]byte{sign(0, 100)}, true)
	if err != nil || res[0].Status != "committed" || res[0].Code != "ok" || res[0].Height == 0 {
		t.Fatalf("submit and wait: %+v, %v", res, err)
	}
	if acct, _ := c.Account(ctx, bob.String()); acct.Balance != 100 {
		t.Fatalf("bob: %+v", acct)
	}
	if acct, _ := c.Account(ctx, state.AddressFromKey(alice).String()); acct.Balance != 899 || acct.Nonce != 1 {
		t.Fatalf("alice after paying 100 and a fee of 1: %+v", acct)
	}
	tx, err := c.Tx(ctx, res[0].Hash)
	if err != nil || tx.Status != "committed" || tx.Height != res[0].Height || tx.Tx == nil || tx.Tx.Kind != "transfer" {
		t.Fatalf("tx: %+v, %v", tx, err)
	}
	b, err := c.Block(ctx, res[0].Height, 0, false)
	if err != nil || len(b.Txs) != 1 || b.Txs[0].Hash.String() != res[0].Hash || b.Txs[0].Code != "ok" || len(b.Certificate.Signers) != 1 {
		t.Fatalf("block: %+v, %v", b, err)
	}
	hashes, err := c.Block(ctx, res[0].Height, 0, true)
	if err != nil || len(hashes.TxHashes) != 1 || hashes.TxHashes[0] != res[0].Hash || len(hashes.Txs) != 0 {
		t.Fatalf("block hashes: %+v, %v", hashes, err)
	}

	// Bad parameters.
	for path, want := range map[string]string{
		"/v1/ledger/blocks/zero":         "height",
		"/v1/ledger/blocks/1?wait=soon":  "wait",
		"/v1/ledger/blocks/1?txs=all":    "txs",
		"/v1/ledger/accounts/not-a-peer": "address",
		"/v1/ledger/txs/xyz":             "hash",
	} {
		resp, err := http.Get(n.APIURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		var e ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.HasPrefix(e.Error, want) {
			t.Errorf("%s: %d %q, want a 400 naming %s", path, resp.StatusCode, e.Error, want)
		}
	}
	if _, err := c.Block(ctx, 1_000_000, 0, false); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("a future block: %v", err)
	}

	// Debug views.
	dv, err := c.Consensus(ctx)
	if err != nil || dv.Self == "" || dv.Height == 0 || dv.Decided == 0 {
		t.Fatalf("consensus debug: %+v, %v", dv, err)
	}
	if _, err := c.Mempool(ctx); err != nil {
		t.Fatalf("mempool debug: %v", err)
	}
}

func TestLedgerAPIWithoutGenesisSaysWhy(t *testing.T) {
	n := start(t, initHome(t, t.TempDir(), nil, ""), Options{})
	c, _ := NewClient(n.APIURL())
	_, err := c.LedgerStatus(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || !strings.Contains(apiErr.Message, "no genesis.json") {
		t.Fatalf("got %v", err)
	}
}

// Beyond loopback, a mutating request needs the node's token.
func TestMutatingRequestsNeedTheTokenBeyondLoopback(t *testing.T) {
	n := &Node{token: "secret"}
	h := n.mutating(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for auth, want := range map[string]int{"": 401, "Bearer wrong": 401, "Bearer secret": 204} {
		r := httptest.NewRequest("POST", "/v1/ledger/txs", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, w.Code, want)
		}
	}
	open := &Node{}
	w := httptest.NewRecorder()
	open.mutating(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })(w, httptest.NewRequest("POST", "/", nil))
	if w.Code != 204 {
		t.Fatalf("on loopback (no token) a request was refused: %d", w.Code)
	}
}
