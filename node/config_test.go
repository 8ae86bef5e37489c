package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitWritesAKeyOnlyItsOwnerCanRead(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	id, err := Init(InitOptions{Home: home, Network: "devnet", Roles: []string{"validator"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(home, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
	key, err := LoadKey(filepath.Join(home, KeyFile))
	if err != nil || mustID(key) != id {
		t.Fatalf("key does not load back as %s: %v", id, err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network != "devnet" || strings.Join(cfg.Roles, ",") != "client,validator" || cfg.API != DefaultAPI {
		t.Fatalf("config: %+v", cfg.Config)
	}
	if cfg.AnnounceInterval != DefaultAnnounceInterval {
		t.Fatalf("announce interval %v", cfg.AnnounceInterval)
	}
}

func TestInitRefusesToReplaceAKeyWithoutForce(t *testing.T) {
	home := t.TempDir()
	first, err := Init(InitOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(InitOptions{Home: home}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second init: %v", err)
	}
	key, _ := LoadKey(filepath.Join(home, KeyFile))
	if mustID(key) != first {
		t.Fatal("a refused init changed the key")
	}
	second, err := Init(InitOptions{Home: home, Force: true})
	if err != nil || second == first {
		t.Fatalf("forced init: %s, %v", second, err)
	}
}

func TestInitRefusesBadFlagsNamingThem(t *testing.T) {
	cases := []struct {
		opts InitOptions
		want string
	}{
		{InitOptions{Network: "Has Spaces"}, `network "Has Spaces"`},
		{InitOptions{Listen: []string{"0.0.0.0:4001"}}, `listen[0] "0.0.0.0:4001"`},
		{InitOptions{API: "7400"}, `api "7400"`},
		{InitOptions{API: "127.0.0.1:99999"}, `api "127.0.0.1:99999"`},
		{InitOptions{Bootstrap: []string{"/ip4/127.0.0.1/tcp/4001"}}, `bootstrap[0]`},
		{InitOptions{Roles: []string{"worker", "miner"}}, `roles[1] "miner"`},
	}
	for _, c := range cases {
		c.opts.Home = t.TempDir()
		_, err := Init(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", c.opts, err, c.want)
		}
		if _, statErr := os.Stat(filepath.Join(c.opts.Home, KeyFile)); statErr == nil {
			t.Errorf("%+v: a refused init left a key behind", c.opts)
		}
	}
}

func TestBadConfigAndKeyFilesAreNamed(t *testing.T) {
	home := t.TempDir()
	if _, err := Init(InitOptions{Home: home}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(home, ConfigFile)
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ config, want string }{
		{"network = 'x'\nlisten = [\n", cfgPath + ", line"},
		{"network = 'x'\nlisten = ['/ip4/127.0.0.1/tcp/1']\napi = '127.0.0.1:1'\nroles = []\nlisten_on = 3\n", `line 5: unknown setting "listen_on"`},
		{"network = 'x'\nlisten = ['/ip4/127.0.0.1/tcp/1']\napi = '127.0.0.1:1'\nannounce_interval = 'often'\n", `announce_interval "often"`},
		{"network = 'x'\nlisten = []\napi = '127.0.0.1:1'\n", "listen: at least one"},
	}
	for _, c := range cases {
		write(cfgPath, c.config)
		_, err := LoadConfig(home)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), cfgPath) {
			t.Errorf("config %q: got %v, want an error naming %s and %q", c.config, err, cfgPath, c.want)
		}
	}
	if _, err := LoadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "shoulders init") {
		t.Errorf("missing config: %v", err)
	}

	keyPath := filepath.Join(home, KeyFile)
	write(keyPath, "not a key at all")
	if _, err := LoadKey(keyPath); err == nil || !strings.Contains(err.Error(), keyPath) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt key: %v", err)
	}
}
