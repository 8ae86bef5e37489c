package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	// Write beside, sync, and rename, so a crash never leaves a half-written or empty key.
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("node: writing key %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", fmt.Errorf("node: writing key %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("node: writing key %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("node: writing key %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("node: writing key %s: %w", path, err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return peer.IDFromPrivateKey(priv)
}

// loadOrCreateToken returns the API token in path, creating a random one (mode 0600) if there is none.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node: API token %s: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: writing API token %s: %w", path, err)
	}
	return t, nil
}

// LoadToken reads the API token of the node at home ("" when it has none).
func LoadToken(home string) string {
	b, err := os.ReadFile(filepath.Join(home, TokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
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
