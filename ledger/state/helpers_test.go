package state

import (
	"crypto/ed25519"
	"encoding/binary"
	"testing"
)

const testChain = "shoulders-test"

// testKey returns a deterministic key for index i.
func testKey(i int) ed25519.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i)+1)
	copy(seed[8:], "shoulders state test key")
	return ed25519.NewKeyFromSeed(seed[:])
}

func mustTransfer(t testing.TB, key ed25519.PrivateKey, nonce, fee uint64, to Address, amount uint64) *Tx {
	t.Helper()
	raw, err := SignTransfer(key, testChain, nonce, fee, to, amount)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}
