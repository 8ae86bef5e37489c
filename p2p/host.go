package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shouldersnet/shoulders/version"
)

// HostConfig is what NewHost needs.
type HostConfig struct {
	Key    crypto.PrivKey
	Listen []string // multiaddrs; TCP and QUIC (udp/.../quic-v1) are supported
	// Registry receives libp2p's own metrics (swarm, identify, resource manager). Nil disables them.
	Registry prometheus.Registerer
	// ConnLow and ConnHigh are the connection manager's watermarks: past ConnHigh connections it trims back to
	// ConnLow, sparing peers tagged as valuable (gossip mesh members) and connections younger than a minute.
	ConnLow, ConnHigh int
	// Gater, when set, decides which connections the host may make and accept.
	Gater connmgr.ConnectionGater
}

// Defaults for HostConfig's watermarks.
const (
	DefaultConnLow  = 32
	DefaultConnHigh = 96
)

// NewHost builds the node's libp2p host: TCP and QUIC transports only, Noise/TLS security and yamux (libp2p's
// defaults), a connection manager, and the resource manager with libp2p's default limits scaled to this
// machine's memory and file descriptors. The host listens as soon as it is returned.
func NewHost(cfg HostConfig) (host.Host, error) {
	if cfg.ConnLow == 0 {
		cfg.ConnLow = DefaultConnLow
	}
	if cfg.ConnHigh == 0 {
		cfg.ConnHigh = DefaultConnHigh
	}
	cm, err := basicconnmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, basicconnmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	var rmOpts []rcmgr.Option
	if cfg.Registry == nil {
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), rmOpts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent(version.Agent()),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	}
	if cfg.Gater != nil {
		opts = append(opts, libp2p.ConnectionGater(cfg.Gater))
	}
	if cfg.Registry != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registry))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("p2p: starting host on %v: %w", cfg.Listen, err)
	}
	return h, nil
}
