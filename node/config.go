package node

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"

	"github.com/shouldersnet/shoulders/p2p/announce"
)

// File names inside a node's home directory.
const (
	ConfigFile = "config.toml"
	KeyFile    = "node.key"
	TokenFile  = "api.token"
	DataDir    = "data"
	// BlocksDir, inside DataDir, holds the files of large content blocks (chunks of blobs over 64 KiB).
	BlocksDir = "blocks"
)

// Defaults for a new node home.
const (
	DefaultNetwork          = "shoulders"
	DefaultAPI              = "127.0.0.1:7400"
	DefaultAnnounceInterval = 30 * time.Second
)

// DefaultListen is where a new node listens: TCP and QUIC on port 4001 of every interface.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}

// DefaultRoles are a new node's roles: every node is a client, and offers its machine as a worker.
var DefaultRoles = []string{announce.RoleClient, announce.RoleWorker}

// Config is a node's config.toml. Keep it small: everything here is something a node's owner decides.
type Config struct {
	// Network names the network to join; nodes of different networks do not see each other.
	Network string `toml:"network" comment:"network to join; nodes of different networks never see each other"`
	// Listen lists the multiaddrs the node listens on (TCP and QUIC).
	Listen []string `toml:"listen" comment:"multiaddrs to listen on: /ip4/HOST/tcp/PORT and /ip4/HOST/udp/PORT/quic-v1"`
	// API is the host:port of the HTTP API.
	API string `toml:"api" comment:"HTTP API address; keep it on 127.0.0.1 unless you know who can reach it"`
	// Bootstrap lists full multiaddrs (ending in /p2p/<peer ID>) of nodes to join through.
	Bootstrap []string `toml:"bootstrap" comment:"nodes to join through: full multiaddrs ending in /p2p/<peer ID>"`
	// Roles are "client" (always), "worker" and "validator".
	Roles []string `toml:"roles" comment:"client (always), worker, validator"`
	// AnnounceInterval is how often the node re-announces its worker offer ("30s" when empty).
	AnnounceInterval string `toml:"announce_interval,omitempty" comment:"how often to re-announce this node's offer (default 30s)"`
}

// DefaultConfig is the configuration `shoulders init` writes when given no flags.
func DefaultConfig() Config {
	return Config{
		Network:   DefaultNetwork,
		Listen:    slices.Clone(DefaultListen),
		API:       DefaultAPI,
		Bootstrap: []string{},
		Roles:     slices.Clone(DefaultRoles),
	}
}

// Validated is a Config after Validate: every field checked, with the parsed forms beside the text.
type Validated struct {
	Config
	BootstrapPeers   []peer.AddrInfo
	AnnounceInterval time.Duration
}

// Validate checks every field, fills the defaults of optional ones, and names the field of the first problem.
func (c Config) Validate() (Validated, error) {
	v := Validated{Config: c}
	if !validNetworkName(c.Network) {
		return v, fmt.Errorf("network %q: want 1-64 characters of a-z, 0-9, '-', '_' or '.'", c.Network)
	}
	if len(c.Listen) == 0 {
		return v, errors.New("listen: at least one address is needed")
	}
	for i, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return v, fmt.Errorf("listen[%d] %q: %v", i, s, err)
		}
	}
	if err := validateHostPort(c.API); err != nil {
		return v, fmt.Errorf("api %q: %v", c.API, err)
	}
	for i, s := range c.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return v, fmt.Errorf("bootstrap[%d] %q: want a full multiaddr ending in /p2p/<peer ID>: %v", i, s, err)
		}
		v.BootstrapPeers = append(v.BootstrapPeers, *ai)
	}
	roles := []string{announce.RoleClient}
	for i, r := range c.Roles {
		if !slices.Contains(announce.KnownRoles, r) {
			return v, fmt.Errorf("roles[%d] %q: want one of %s", i, r, strings.Join(announce.KnownRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	v.Roles = roles
	v.AnnounceInterval = DefaultAnnounceInterval
	if c.AnnounceInterval != "" {
		d, err := time.ParseDuration(c.AnnounceInterval)
		if err != nil || d < 100*time.Millisecond || d > 20*time.Minute {
			return v, fmt.Errorf("announce_interval %q: want a duration from 100ms to 20m, like \"30s\"", c.AnnounceInterval)
		}
		v.AnnounceInterval = d
	}
	return v, nil
}

func validNetworkName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("the host is empty (write 127.0.0.1:PORT)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// LoadConfig reads and validates home's config.toml. Every error names the file.
func LoadConfig(home string) (Validated, error) {
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Validated{}, fmt.Errorf("node: no config at %s (run `shoulders init --home %s` first)", path, home)
		}
		return Validated{}, fmt.Errorf("node: config file %s: %w", path, err)
	}
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var serr *toml.StrictMissingError
		if errors.As(err, &serr) && len(serr.Errors) > 0 {
			row, _ := serr.Errors[0].Position()
			return Validated{}, fmt.Errorf("node: config file %s, line %d: unknown setting %q", path, row, strings.Join(serr.Errors[0].Key(), "."))
		}
		var derr *toml.DecodeError
		if errors.As(err, &derr) {
			row, col := derr.Position()
			return Validated{}, fmt.Errorf("node: config file %s, line %d column %d: %v", path, row, col, derr)
		}
		return Validated{}, fmt.Errorf("node: config file %s: %w", path, err)
	}
	v, err := c.Validate()
	if err != nil {
		return Validated{}, fmt.Errorf("node: config file %s: %w", path, err)
	}
	return v, nil
}

// SaveConfig writes c to home's config.toml.
func SaveConfig(home string, c Config) error {
	b, err := toml.Marshal(c)
	if err != nil {
		return fmt.Errorf("node: encoding config: %w", err)
	}
	header := "# Shoulders node configuration. `shoulders init` wrote it; edit freely, the node checks it at start.\n\n"
	path := filepath.Join(home, ConfigFile)
	if err := os.WriteFile(path, append([]byte(header), b...), 0o644); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	return nil
}

// InitOptions is what `shoulders init` may set; empty fields take the defaults.
type InitOptions struct {
	Home      string
	Network   string
	Listen    []string
	API       string
	Bootstrap []string
	Roles     []string
	// Force replaces an existing key (the node gets a new identity).
	Force bool
}

// Init creates a node home: a new Ed25519 key (mode 0600) and a config.toml. It refuses to replace an
// existing key unless Force is set. It returns the new node's peer ID.
func Init(o InitOptions) (peer.ID, error) {
	c := DefaultConfig()
	if o.Network != "" {
		c.Network = o.Network
	}
	if len(o.Listen) > 0 {
		c.Listen = o.Listen
	}
	if o.API != "" {
		c.API = o.API
	}
	if len(o.Bootstrap) > 0 {
		c.Bootstrap = o.Bootstrap
	}
	if len(o.Roles) > 0 {
		c.Roles = o.Roles
	}
	v, err := c.Validate()
	if err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	c.Roles = v.Roles
	keyPath := filepath.Join(o.Home, KeyFile)
	if _, err := os.Stat(keyPath); err == nil && !o.Force {
		return "", fmt.Errorf("node: %s already exists; use --force to replace it (the node gets a new identity)", keyPath)
	}
	if err := os.MkdirAll(o.Home, 0o700); err != nil {
		return "", fmt.Errorf("node: creating home %s: %w", o.Home, err)
	}
	id, err := writeNewKey(keyPath)
	if err != nil {
		return "", err
	}
	if err := SaveConfig(o.Home, c); err != nil {
		return "", err
	}
	return id, nil
}
