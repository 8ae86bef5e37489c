package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
)

func newInitCmd() *cobra.Command {
	var o node.InitOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node home: an Ed25519 key and a config.toml",
		Long: `Create a node home directory holding the node's Ed25519 key (node.key, mode 0600; the key's peer ID is
the node's identity and its ledger address) and config.toml (network, listen addresses, API address, bootstrap
peers, roles). An existing key is never replaced without --force.`,
		Example: `  shoulders init
  shoulders init --home /tmp/n1 --network devnet --listen /ip4/127.0.0.1/tcp/4101 --api 127.0.0.1:7401 \
    --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := node.Init(o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created node %s\n", id)
			fmt.Fprintf(out, "  key:    %s\n", filepath.Join(o.Home, node.KeyFile))
			fmt.Fprintf(out, "  config: %s\n", filepath.Join(o.Home, node.ConfigFile))
			fmt.Fprintf(out, "Start it with: shoulders node --home %s\n", o.Home)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Home, "home", defaultHome(), "node home directory")
	f.StringVar(&o.Network, "network", node.DefaultNetwork, "network to join")
	f.StringArrayVar(&o.Listen, "listen", node.DefaultListen, "multiaddr to listen on (repeatable)")
	f.StringVar(&o.API, "api", node.DefaultAPI, "HTTP API address, host:port")
	f.StringArrayVar(&o.Bootstrap, "bootstrap", nil, "full multiaddr of a node to join through, ending in /p2p/<peer ID> (repeatable)")
	f.StringSliceVar(&o.Roles, "roles", node.DefaultRoles, "roles: client (always), worker, validator")
	f.BoolVar(&o.Force, "force", false, "replace an existing key (the node gets a new identity)")
	return cmd
}
