package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/devnet"
)

func newDevnetCmd() *cobra.Command {
	var cfg devnet.Config
	var keep bool
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole Shoulders network on loopback until interrupted",
		Long: `Start a whole network on this machine: --validators validator nodes and --nodes more that follow the chain,
each a separate ` + "`shoulders node`" + ` process with its own home under --dir (a new temporary directory by default),
all on 127.0.0.1, the first one the bootstrap peer of the others, with a genesis that funds every node's account.
It prints each node's API URL, then a status line (each node's chain height, peers and the worker offers it sees)
whenever it changes. Ctrl-C stops every node.`,
		Example: `  shoulders devnet
  shoulders devnet --validators 7 --nodes 2 --dir /tmp/devnet   # keeps the homes; run it again to continue`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("devnet: finding this program: %w", err)
			}
			cfg.Exe = exe
			if cfg.Dir == "" {
				cfg.Dir, err = os.MkdirTemp("", "shoulders-devnet-")
				if err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(cfg.Dir)
				}
			}
			return devnet.Run(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Validators, "validators", 4, "how many validator nodes to run")
	f.IntVar(&cfg.Nodes, "nodes", 0, "how many more nodes to run, following the chain without voting")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the node homes (default: a new temporary directory, removed on exit)")
	f.BoolVar(&keep, "keep", false, "keep the temporary directory on exit")
	f.IntVar(&cfg.BasePort, "base-port", 0, "node i listens on BASE+i and serves its API on BASE+100+i (default: free ports)")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "log level of every node (logs go to <home>/node.log)")
	return cmd
}
