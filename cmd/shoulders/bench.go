package main

import "github.com/spf13/cobra"

// newBenchCmd groups the benchmark verbs. Each prints its figure beside a baseline measured in the same run,
// on this machine, so the two can be compared without trusting numbers taken elsewhere.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a part of Shoulders against a baseline run on the same machine",
	}
	cmd.AddCommand(newBenchGossipCmd(), newBenchConsensusCmd(), newBenchLedgerCmd(), newBenchAttributionCmd(), newBenchContentCmd())
	return cmd
}
