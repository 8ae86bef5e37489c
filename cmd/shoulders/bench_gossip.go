package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/p2p"
)

func newBenchGossipCmd() *cobra.Command {
	var cfg p2p.GossipBenchConfig
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gossip",
		Short: "Time announcements reaching every node, against plain gossipsub in the same run",
		Long: `Start --nodes libp2p hosts on loopback TCP, connect each to --degree random others, and publish --messages
announcements --spacing apart from random nodes; then the same with plain gossipsub (default options, payloads of
the same size) on the same topology. Prints, for each, the time from publish to the last node's delivery (p50,
p99, max), the share of deliveries made, the share of nodes holding each announcer's latest announcement (an
announcement overtaken by its announcer's newer one is rightly not delivered), messages sent per delivery,
duplicates delivered to the application, and the CPU time the process spent per announcement while they spread
(all nodes together, their heartbeats included).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := p2p.BenchGossip(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"config": cfg, "results": res})
			}
			fmt.Fprintf(out, "gossip: %d nodes on loopback TCP, %d announcements %v apart, each node dialing %d others, %d rounds\n",
				cfg.Nodes, cfg.Messages, cfg.Spacing, cfg.Degree, cfg.Rounds)
			tw := newTable(out)
			fmt.Fprintln(tw, "\tREACH P50\tREACH P99\tREACH MAX\tDELIVERED\tLATEST HELD\tSENDS/DELIVERY\tAPP DUPLICATES\tCPU/MESSAGE")
			for _, r := range res {
				fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%.2f%%\t%.2f%%\t%.2f\t%d\t%v\n", r.Name, ms(r.ReachP50), ms(r.ReachP99), ms(r.ReachMax),
					100*r.Delivered, 100*r.Latest, r.SendsPerDelivery, r.AppDuplicates, ms(r.CPUPerMessage))
			}
			plain, ours := res[0], res[1]
			fmt.Fprintf(tw, "shoulders / plain\t%.2f\t%.2f\t\t\t\t%.2f\t\t%.2f\n", ratio(ours.ReachP50, plain.ReachP50),
				ratio(ours.ReachP99, plain.ReachP99), ours.SendsPerDelivery/plain.SendsPerDelivery, ratio(ours.CPUPerMessage, plain.CPUPerMessage))
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 20, "hosts on loopback")
	f.IntVar(&cfg.Messages, "messages", 300, "announcements to publish")
	f.DurationVar(&cfg.Spacing, "spacing", 10*time.Millisecond, "time between publishes")
	f.IntVar(&cfg.Degree, "degree", 6, "connections each node dials")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed for the topology")
	f.IntVar(&cfg.Rounds, "rounds", 3, "rounds of each variant, alternating")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
