package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// writeNewKey generates an Ed25519 key and writes it to path with mode 0600, replacing any file there.
func writeNewKey(path string) (peer.ID, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("node: generating key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("node: encoding key: %w", err)
	}
	// Write beside and rename, so a crash never leaves a half-written key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", fmt.Errorf("node: writing key %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps the mode of an existing file
		return "", fmt.Errorf("node: key %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("node: writing key %s: %w", path, err)
	}
	return peer.IDFromPrivateKey(priv)
}

// LoadKey reads a node's Ed25519 key. Every error names the file.
func LoadKey(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("node: no key at %s (run `shoulders init` first)", path)
		}
		return nil, fmt.Errorf("node: key file %s: %w", path, err)
	}
	priv, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node: key file %s is not a private key (corrupt?): %v", path, err)
	}
	if priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node: key file %s holds a %v key; Shoulders uses Ed25519", path, priv.Type())
	}
	return priv, nil
}
