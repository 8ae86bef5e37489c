package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p"
)

func newDebugCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug",
		Short: "Look inside a running node: DHT, gossip topics, peer scores, the live gossip trace",
	}
	cmd.AddCommand(newDebugDHTCmd(), newDebugLookupCmd(), newDebugTopicsCmd(), newDebugScoresCmd(),
		newDebugTraceCmd(), newDebugMessageCmd(), newDebugConsensusCmd(), newDebugMempoolCmd())
	return cmd
}

func newDebugDHTCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "dht",
		Short: "Show the DHT routing table, bucket by bucket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			rt, err := c.RoutingTable(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, rt)
			}
			fmt.Fprintf(out, "routing table of %s: %d peers in %d buckets\n", rt.Self, rt.Size, len(rt.Buckets))
			tw := newTable(out)
			fmt.Fprintln(tw, "CPL\tPEER\tCONNECTED\tADDED\tLAST USEFUL\tLAST QUERIED")
			for _, b := range rt.Buckets {
				for _, p := range b.Peers {
					fmt.Fprintf(tw, "%d\t%s\t%v\t%s\t%s\t%s\n", b.CPL, p.Peer, p.Connected, ago(p.AddedAt), agoPtr(p.LastUseful), agoPtr(p.LastQueried))
				}
			}
			return tw.Flush()
		},
	}
	f.register(cmd, true)
	return cmd
}

func agoPtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return ago(*t)
}

func newDebugLookupCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "lookup KEY",
		Short: "Run a DHT lookup of the peers closest to KEY and show every hop",
		Long: `Run a DHT lookup from the node and show each query it sent, who answered with which closer peers, and
the hop at which each peer was learned. KEY is a peer ID, a CID, or any other string (looked up as its bytes).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			res, err := c.Lookup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, res)
			}
			fmt.Fprintf(out, "lookup of %s %q: %d steps in %.1f ms\n", res.KeyKind, res.Key, len(res.Steps), res.DurationMS)
			tw := newTable(out)
			fmt.Fprintln(tw, "AT(ms)\tHOP\tEVENT\tPEER\tDETAIL")
			for _, s := range res.Steps {
				detail := s.Error
				if len(s.Closer) > 0 {
					detail = fmt.Sprintf("%d closer: %s", len(s.Closer), strings.Join(shortAll(s.Closer), " "))
				}
				fmt.Fprintf(tw, "%.1f\t%d\t%s\t%s\t%s\n", s.AtMS, s.Hop, s.Type, short(s.Peer), detail)
			}
			tw.Flush()
			if res.Error != "" {
				fmt.Fprintf(out, "lookup ended with an error: %s\n", res.Error)
			}
			fmt.Fprintf(out, "closest peers (%d):\n", len(res.Closest))
			for _, p := range res.Closest {
				fmt.Fprintf(out, "  %s\n", p)
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func shortAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return out
}

func newDebugTopicsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Show the gossip topics with their subscribers and this node's mesh",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			topics, err := c.Topics(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"topics": topics})
			}
			for _, t := range topics {
				fmt.Fprintf(out, "%s\n  subscribers (%d): %s\n  mesh (%d):        %s\n", t.Topic, len(t.Subscribers),
					strings.Join(shortAll(t.Subscribers), " "), len(t.Mesh), strings.Join(shortAll(t.Mesh), " "))
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newDebugScoresCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "scores",
		Short: "Show each peer's gossipsub score and its parts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			s, err := c.Scores(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, s)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "PEER\tSCORE\tBEHAVIOUR\tTOPIC\tMESH TIME(s)\tFIRST DELIVERIES\tINVALID")
			for _, p := range s.Peers {
				topics := make([]string, 0, len(p.Topics))
				for t := range p.Topics {
					topics = append(topics, t)
				}
				slices.Sort(topics)
				if len(topics) == 0 {
					fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t-\t-\t-\t-\n", p.Peer, p.Score, p.BehaviourPenalty)
				}
				for _, t := range topics {
					ts := p.Topics[t]
					fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%.0f\t%.1f\t%.1f\n", p.Peer, p.Score, p.BehaviourPenalty, t, ts.TimeInMeshS, ts.FirstDeliveries, ts.InvalidDeliveries)
				}
			}
			tw.Flush()
			fmt.Fprintf(out, "snapshot taken %s\n", ago(s.At))
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newDebugTraceCmd() *cobra.Command {
	var f clientFlags
	var follow bool
	var topics, types []string
	var backlog int
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Show the gossip trace: recent events, or follow them live",
		Long: `Show what gossip did on this node: publish, deliver, duplicate, reject (with the reason), ignore, graft,
prune, join, leave, add_peer, remove_peer, throttle, drop_rpc, undeliverable. Without --follow it prints the
--backlog most recent events and exits; with --follow it prints them, then every new event until interrupted.`,
		Example: `  shoulders debug trace --follow
  shoulders debug trace --follow --type deliver,reject --topic workers
  shoulders debug trace --json --backlog 1000 > trace.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := node.TraceQuery{Follow: follow, Backlog: backlog, Filter: p2p.Filter{Topics: topics, Types: types}}
			// Check the filter here too, so a typo fails before any connection is made.
			if _, err := node.ParseTraceQuery(map[string][]string{"type": {strings.Join(types, ",")}}, nil); err != nil {
				return fmt.Errorf("--%v", err)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			print := func(e p2p.Event) error {
				if f.json {
					return printJSONLine(out, e)
				}
				_, err := fmt.Fprintln(out, formatEvent(e))
				return err
			}
			dropped := func(n uint64) {
				fmt.Fprintf(cmd.ErrOrStderr(), "(this reader fell behind: %d events skipped)\n", n)
			}
			err = c.Trace(cmd.Context(), q, print, dropped)
			if errors.Is(err, cmd.Context().Err()) {
				return nil // interrupted while following
			}
			return err
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they happen")
	cmd.Flags().StringSliceVar(&topics, "topic", nil, "only these topics, by full or short name (workers)")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only these event types, e.g. deliver,reject")
	cmd.Flags().IntVar(&backlog, "backlog", 100, "recent events to print first (0-4096)")
	return cmd
}

// formatEvent prints one trace event on one line for people.
func formatEvent(e p2p.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-11s", e.Time.Local().Format("15:04:05.000"), e.Type)
	if e.Topic != "" {
		fmt.Fprintf(&b, " %s", p2p.TopicShortName(e.Topic))
	}
	if e.MsgID != "" {
		fmt.Fprintf(&b, " msg=%s", e.MsgID[:min(12, len(e.MsgID))])
	}
	if e.Peer != "" {
		fmt.Fprintf(&b, " peer=%s", short(e.Peer))
	}
	if e.Author != "" && e.Author != e.Peer {
		fmt.Fprintf(&b, " author=%s", short(e.Author))
	}
	if e.Size > 0 {
		fmt.Fprintf(&b, " %dB", e.Size)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	return b.String()
}

func newDebugMessageCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "message ID",
		Short: "Show a recent gossip message: who sent it to this node, when, and its decoded body",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			m, err := c.Message(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, m)
			}
			fmt.Fprintf(out, "message %s\n  topic:  %s\n  author: %s\n  size:   %d bytes\n  status: %s %s\n  first seen: %s\n",
				m.ID, m.Topic, m.Author, m.Size, m.Status, m.Reason, m.FirstSeen.Local().Format(time.RFC3339Nano))
			for _, r := range m.Receipts {
				kind := "first"
				if r.Duplicate {
					kind = "duplicate"
				}
				fmt.Fprintf(out, "  from %s at %s (%s)\n", r.Peer, r.At.Local().Format("15:04:05.000000"), kind)
			}
			fmt.Fprintln(out, "  body:")
			return printJSON(indent{out, "    "}, m.Body)
		},
	}
	f.register(cmd, true)
	return cmd
}

// indent prefixes every line written through it.
type indent struct {
	w      io.Writer
	prefix string
}

func (i indent) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(i.w, i.prefix+l); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
