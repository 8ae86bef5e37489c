package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p/announce"
)

func newIDCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Show the node's peer ID, addresses, network, roles and version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			info, err := c.Node(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "peer id:  %s\nnetwork:  %s\nroles:    %s\nversion:  %s\n", info.PeerID, info.Network, strings.Join(info.Roles, ", "), info.Version)
			for _, a := range info.Addrs {
				fmt.Fprintf(out, "addr:     %s\n", a)
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newPeersCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the peers the node is connected to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			peers, err := c.Peers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"peers": peers})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "PEER\tDIRECTION\tAGENT\tADDRESS")
			for _, p := range peers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.PeerID, p.Direction, p.Agent, strings.Join(p.Addrs, " "))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d peers\n", len(peers))
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newWorkersCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the worker offers in the node's catalog",
		Long: `List the worker offers the node has heard: every node announces what it is (roles) and what its machine
offers (CPU cores, memory, NVIDIA GPUs, executors) every 30 s; an offer not renewed expires after three intervals.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			entries, err := c.Catalog(cmd.Context(), "worker")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"entries": entries})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "PEER\tROLES\tCPU\tMEMORY\tGPUS\tEXECUTORS\tVERSION\tLAST SEEN")
			for _, e := range entries {
				var o announce.WorkerOfferView
				if err := remarshal(e.Body, &o); err != nil {
					return err
				}
				gpus := make([]string, 0, len(o.GPUs))
				for _, g := range o.GPUs {
					gpus = append(gpus, fmt.Sprintf("%s %dGiB", g.Name, g.MemoryMiB/1024))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Announcer, orDash(o.Roles), o.CPUCores,
					bytesIEC(o.MemoryBytes), orDash(gpus), orDash(o.Executors), o.Version, ago(e.LastSeen))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d workers\n", len(entries))
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newCatalogCmd() *cobra.Command {
	var f clientFlags
	var kind string
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "List the announcements in the node's catalog (workers, datanet versions)",
		Long: `List what the node has heard announced on the network, one kind or all: worker offers ("worker") and
datanet versions ("datanet", published by a datanet's owner on every new version). Each entry shows who
announced it, when it was last heard and when it expires.`,
		Example: `  shoulders catalog --kind datanet`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			entries, err := c.Catalog(cmd.Context(), kind)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"entries": entries})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "KIND\tSUBJECT\tANNOUNCER\tSUMMARY\tLAST SEEN\tEXPIRES")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, catalogSubject(e), short(e.Announcer), catalogSummary(e), ago(e.LastSeen), e.ExpiresAt.Local().Format("15:04:05"))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d entries\n", len(entries))
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind: worker or datanet (default: all)")
	return cmd
}

// catalogSubject shortens the announcer part of a subject ("<peer>/<datanet>" shows as the datanet name).
func catalogSubject(e node.CatalogEntry) string {
	if rest, ok := strings.CutPrefix(e.Subject, e.Announcer+"/"); ok {
		return rest
	}
	return short(e.Subject)
}

func catalogSummary(e node.CatalogEntry) string {
	switch e.Kind {
	case "datanet":
		var d announce.DatanetVersionView
		if remarshal(e.Body, &d) == nil {
			return fmt.Sprintf("version %d, %d records (%s), root %s", d.Version, d.RecordCount, bytesIEC(d.Bytes), d.Root)
		}
	case "worker":
		var o announce.WorkerOfferView
		if remarshal(e.Body, &o) == nil {
			return fmt.Sprintf("%s, %d CPUs, %d GPUs", strings.Join(o.Roles, ","), o.CPUCores, len(o.GPUs))
		}
	}
	return "-"
}
