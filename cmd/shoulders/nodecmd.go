package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
)

func newNodeCmd() *cobra.Command {
	var home, traceFile, level string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node until interrupted",
		Long: `Run the node whose home is --home: join the network (libp2p over TCP and QUIC, the private Kademlia DHT,
gossipsub), announce this machine as a worker offer every announce_interval (30 s unless config.toml says
otherwise), keep a catalog of what the network announces, and serve the HTTP API. SIGINT or SIGTERM stops it
cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			if os.Getenv("GOGC") == "" {
				// A validator allocates a block's worth of transactions every few hundred milliseconds, most
				// of it short-lived: collecting at 5x the live heap instead of 2x cuts the collector's share
				// of the CPU by more than half (committed tx/s in bench ledger: about +6%) for a few hundred
				// MB more at the peak. GOGC in the environment still decides.
				debug.SetGCPercent(400)
			}
			n, err := node.Open(cmd.Context(), home, node.Options{Log: log, TraceFile: traceFile})
			if err != nil {
				return err
			}
			info := n.Info()
			fmt.Fprintf(cmd.OutOrStdout(), "node %s on network %q\n  api: %s\n", info.PeerID, info.Network, n.APIURL())
			for _, a := range info.Addrs {
				fmt.Fprintf(cmd.OutOrStdout(), "  addr: %s\n", a)
			}
			return n.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&home, "home", defaultHome(), "node home directory (made by `shoulders init`)")
	cmd.Flags().StringVar(&traceFile, "trace-file", "", "append every gossip trace event to this file as JSON lines")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return cmd
}
