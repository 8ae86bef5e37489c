package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/p2p/content"
)

func newBenchContentCmd() *cobra.Command {
	var cfg content.FetchBenchConfig
	var sizeMiB int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "content",
		Short: "Fetch a blob between nodes on loopback, from one provider and from two, against a plain TCP copy",
		Long: `Start libp2p hosts on loopback TCP with a real DHT, add a random blob of --size MiB on two providers, and
time: a plain single-stream TCP copy of the same bytes over loopback (the baseline, in this run), the same copy
over one libp2p stream (TLS and yamux, no hashing or storage: the transport's ceiling), a fresh node fetching the
blob from one provider (found through the DHT), and a fresh node fetching it from both at once. Every fetched
chunk is verified against its CID and stored, as a node does. Each measurement runs --rounds times, alternating,
and the best of each is shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Size = sizeMiB << 20
			res, err := content.BenchFetch(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"config": cfg, "results": res})
			}
			fmt.Fprintf(out, "content: a %d MiB random blob between nodes on loopback TCP, best of %d rounds\n", sizeMiB, cfg.Rounds)
			tw := newTable(out)
			fmt.Fprintln(tw, "\tMB/s\tTIME\tOF TCP")
			tcp := res[0].MBps
			for _, r := range res {
				fmt.Fprintf(tw, "%s\t%.0f\t%v\t%.0f%%\n", r.Name, r.MBps, ms(r.Duration), 100*r.MBps/tcp)
			}
			fmt.Fprintf(tw, "two providers / one\t%.2f\t\t\n", res[3].MBps/res[2].MBps)
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.Int64Var(&sizeMiB, "size", 256, "blob size in MiB (at most 4096)")
	f.IntVar(&cfg.Rounds, "rounds", 2, "rounds of each measurement, alternating")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the nodes' stores (default: a temporary one, removed after)")
	f.BoolVar(&cfg.InMemory, "in-memory", false, "keep the stores in Pebble's in-memory file system instead of on disk")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random blob")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
