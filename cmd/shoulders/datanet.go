package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p/content"
)

func newDatanetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datanet",
		Short: "Create datanets, contribute records, approve them, and read them",
		Long: `A datanet is a named, owned, licensed collection of records in one domain, kept on the ledger. Anyone
contributes records (each a file, or each line of a file with --split-lines); the records are stored on the
contributor's node, offered to the network by CID, and wait for the owner's approval. Identical content is one
record, credited to whoever contributed it first. Every approval makes a new version whose root is a CID over
the ordered list of its records.

Verbs that sign (create, contribute, approve, reject) use the key of the node at --home: its key is its account.`,
	}
	cmd.AddCommand(newDatanetCreateCmd(), newDatanetContributeCmd(), newDatanetPendingCmd(), newDatanetApproveCmd(),
		newDatanetRejectCmd(), newDatanetListCmd(), newDatanetShowCmd(), newDatanetRecordsCmd())
	return cmd
}

// signFlags are the flags of a verb that signs with a node's key.
type signFlags struct {
	clientFlags
	home string
}

func (f *signFlags) register(cmd *cobra.Command) {
	f.clientFlags.register(cmd, true)
	cmd.Flags().StringVar(&f.home, "home", defaultHome(), "home of the node whose key signs (and whose API is used unless --api)")
}

func (f *signFlags) open(ctx context.Context) (*account, error) {
	return openAccount(ctx, f.home, &f.clientFlags)
}

// getDatanet reads a datanet, turning "not found" into words.
func getDatanet(ctx context.Context, c *node.Client, name string) (node.DatanetResponse, error) {
	d, err := c.Datanet(ctx, name)
	var apiErr *node.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return d, fmt.Errorf("there is no datanet %q on the ledger (`shoulders datanet list` shows the ones there are)", name)
	}
	return d, err
}

func newDatanetCreateCmd() *cobra.Command {
	var f signFlags
	var typ, license, description string
	var tags []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a datanet owned by this node's account",
		Long: `Create a datanet: NAME is 1-64 characters of a-z 0-9 . _ - and unique on the ledger. Text datanets take
records of valid UTF-8; binary ones take any bytes. The licence is the terms records are contributed under.`,
		Example: `  shoulders datanet create poems --license CC-BY-4.0 --description "Short poems in English" --tag text --tag en`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := state.CheckDatanetName(name); err != nil {
				return fmt.Errorf("NAME: %w", err)
			}
			rt, err := state.ParseRecordType(typ)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			p := &state.DatanetCreate{Name: name, RecordType: rt, Description: description, License: license, Tags: tags}
			ctx := cmd.Context()
			a, err := f.open(ctx)
			if err != nil {
				return err
			}
			if _, err := a.c.Datanet(ctx, name); err == nil {
				return fmt.Errorf("datanet %q already exists", name)
			}
			res, err := a.submit(ctx, true, p)
			if err != nil {
				return err
			}
			if why := txOutcome(res[0]); why != "" {
				return &exitError{code: 1, err: fmt.Errorf("datanet %q was not created: %s", name, why)}
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, res[0])
			}
			fmt.Fprintf(out, "created datanet %s (%s records, licence %q), owned by %s, at height %d\n",
				name, rt, license, a.addr, res[0].Height)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&typ, "type", "text", "what records hold: text (valid UTF-8) or binary")
	cmd.Flags().StringVar(&license, "license", "", "licence terms records are contributed under (e.g. CC-BY-4.0)")
	cmd.Flags().StringVar(&description, "description", "", "what the datanet is for")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "domain tag (repeatable)")
	return cmd
}

// pendingRecord is one record a contribution is about to add.
type pendingRecord struct {
	source string // "FILE" or "FILE:LINE"
	data   []byte
	cid    string
	size   uint64
}

// readRecords turns the files into records: one per file, or one per non-empty line with splitLines. Every
// record is checked against the chain's limits and the datanet's type; any bad one fails the whole command
// before anything is stored or signed, with every problem named.
func readRecords(files []string, splitLines bool, rt state.RecordType, p state.Params) ([]pendingRecord, error) {
	var recs []pendingRecord
	var problems []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if !splitLines {
			recs = append(recs, pendingRecord{source: file, data: b})
			continue
		}
		jsonl := strings.HasSuffix(file, ".jsonl") || strings.HasSuffix(file, ".ndjson")
		for i, line := range bytes.Split(b, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			src := fmt.Sprintf("%s:%d", file, i+1)
			if jsonl && !json.Valid(line) {
				problems = append(problems, src+": not a JSON value (the file is JSON lines)")
				continue
			}
			recs = append(recs, pendingRecord{source: src, data: line})
		}
	}
	for _, r := range recs {
		switch {
		case len(r.data) == 0:
			problems = append(problems, r.source+": empty; a record needs at least one byte")
		case uint64(len(r.data)) > p.MaxRecordBytes:
			problems = append(problems, fmt.Sprintf("%s: %d bytes, over the chain's record limit of %d", r.source, len(r.data), p.MaxRecordBytes))
		case rt == state.RecordText && !utf8.Valid(r.data):
			problems = append(problems, r.source+": not valid UTF-8, and this is a text datanet")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing was contributed:\n  %s", strings.Join(problems, "\n  "))
	}
	if len(recs) == 0 {
		return nil, errors.New("nothing to contribute: the files hold no records")
	}
	return recs, nil
}

// ContributeReport is what `datanet contribute --json` prints.
type ContributeReport struct {
	Datanet    string          `json:"datanet"`
	Added      []RecordOutcome `json:"added"`
	Duplicates []RecordOutcome `json:"duplicates"`
	Failed     []RecordOutcome `json:"failed"`
}

// RecordOutcome is what became of one record of a contribution.
type RecordOutcome struct {
	Source      string `json:"source"`
	CID         string `json:"cid"`
	Size        uint64 `json:"size"`
	Contributor string `json:"contributor,omitempty"` // for a duplicate: who contributed it first
	Status      string `json:"status,omitempty"`      // for a duplicate: the existing record's status
	Reason      string `json:"reason,omitempty"`      // for a failure
}

func newDatanetContributeCmd() *cobra.Command {
	var f signFlags
	var splitLines bool
	cmd := &cobra.Command{
		Use:   "contribute NAME FILE...",
		Short: "Contribute files (or their lines) to a datanet as records",
		Long: `Store each record on this node (which offers it to the network by CID), and sign a contribution that
credits the records to this node's account, pending the datanet owner's approval. Each FILE is one record; with
--split-lines each non-empty line of each FILE is one (lines of a .jsonl file must each be JSON). Records whose
content is already in the datanet are duplicates: they stay credited to whoever contributed them first.`,
		Example: `  shoulders datanet contribute poems roses.txt violets.txt
  shoulders datanet contribute poems corpus.jsonl --split-lines`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, files := args[0], args[1:]
			ctx := cmd.Context()
			a, err := f.open(ctx)
			if err != nil {
				return err
			}
			d, err := getDatanet(ctx, a.c, name)
			if err != nil {
				return err
			}
			recs, err := readRecords(files, splitLines, d.Datanet.RecordType, a.status.Params)
			if err != nil {
				return err
			}
			rep, err := contribute(ctx, a, name, recs)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				printContribution(out, rep, d.Datanet.Owner.String())
			}
			if len(rep.Failed) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d records were not contributed", len(rep.Failed))}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&splitLines, "split-lines", false, "make each non-empty line of each file a record")
	return cmd
}

// contribute stores the records on the node, leaves out duplicates (of each other and of the datanet's
// records), signs contributions of at most the chain's limit of records each and waits for them to commit.
func contribute(ctx context.Context, a *account, name string, recs []pendingRecord) (*ContributeReport, error) {
	rep := &ContributeReport{Datanet: name, Added: []RecordOutcome{}, Duplicates: []RecordOutcome{}, Failed: []RecordOutcome{}}
	seen := map[string]string{} // cid -> source of its first record here
	var fresh []pendingRecord
	for i := range recs {
		r := &recs[i]
		c, size, err := a.c.PutContent(ctx, bytes.NewReader(r.data))
		if err != nil {
			return nil, fmt.Errorf("storing %s on the node: %w", r.source, err)
		}
		r.cid, r.size, r.data = c, uint64(size), nil
		if first, dup := seen[c]; dup {
			rep.Duplicates = append(rep.Duplicates, RecordOutcome{Source: r.source, CID: c, Size: r.size, Contributor: a.addr.String(), Status: "same content as " + first})
			continue
		}
		seen[c] = r.source
		old, err := a.c.Record(ctx, name, c)
		var apiErr *node.APIError
		switch {
		case err == nil:
			rep.Duplicates = append(rep.Duplicates, RecordOutcome{Source: r.source, CID: c, Size: r.size, Contributor: old.Contributor.String(), Status: old.Status.String()})
			continue
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		default:
			return nil, err
		}
		fresh = append(fresh, *r)
	}

	// Batches: at most max_records_per_tx records, and what fits in max_tx_bytes (45 bytes a record, and
	// room for the header, the name and the signature).
	batches, res, err := submitBatches(ctx, a, name, 8, fresh, func(batch []pendingRecord) (state.Payload, error) {
		pl := &state.DatanetContribute{Datanet: name}
		for _, r := range batch {
			c, err := cidBytes(r.cid)
			if err != nil {
				return nil, err
			}
			pl.Records = append(pl.Records, state.RecordRef{CID: c, Size: r.size})
		}
		return pl, nil
	})
	if err != nil {
		return nil, err
	}
	for i, st := range res {
		for _, r := range batches[i] {
			o := RecordOutcome{Source: r.source, CID: r.cid, Size: r.size}
			if why := txOutcome(st); why != "" {
				o.Reason = why
				rep.Failed = append(rep.Failed, o)
				continue
			}
			// The contribution applied; a record someone else contributed in the meantime stayed theirs.
			got, err := a.c.Record(ctx, name, r.cid)
			if err != nil {
				return nil, err
			}
			if got.Contributor != a.addr || got.Height != st.Height {
				o.Contributor, o.Status = got.Contributor.String(), got.Status.String()
				rep.Duplicates = append(rep.Duplicates, o)
				continue
			}
			rep.Added = append(rep.Added, o)
		}
	}
	return rep, nil
}

// submitBatches splits items into transactions of at most the chain's max_records_per_tx records and what
// fits in max_tx_bytes (each record takes a CID of up to MaxCIDBytes, its length byte and extra bytes; 256
// bytes are left for the header, the name and the signature), signs them with consecutive nonces, submits
// them together and waits for them to commit. It returns the batches and their results, in order.
func submitBatches[T any](ctx context.Context, a *account, name string, extra int, items []T, payload func([]T) (state.Payload, error)) ([][]T, []node.TxStatus, error) {
	p := a.status.Params
	per := max(1, min(p.MaxRecordsPerTx, (p.MaxTxBytes-256-len(name))/(1+state.MaxCIDBytes+extra)))
	var payloads []state.Payload
	var batches [][]T
	for start := 0; start < len(items); start += per {
		batch := items[start:min(start+per, len(items))]
		pl, err := payload(batch)
		if err != nil {
			return nil, nil, err
		}
		payloads, batches = append(payloads, pl), append(batches, batch)
	}
	if len(payloads) == 0 {
		return nil, nil, nil
	}
	res, err := a.submit(ctx, true, payloads...)
	return batches, res, err
}

func printContribution(out io.Writer, rep *ContributeReport, owner string) {
	if n := len(rep.Added); n > 0 {
		fmt.Fprintf(out, "added %d %s to datanet %s, pending approval by its owner (%s)\n", n, plural(n, "record", "records"), rep.Datanet, owner)
	} else {
		fmt.Fprintf(out, "no records added to datanet %s\n", rep.Datanet)
	}
	const show = 10
	if n := len(rep.Duplicates); n > 0 {
		fmt.Fprintf(out, "%d %s already there, credited to whoever contributed it first:\n", n, plural(n, "duplicate was", "duplicates were"))
		for i, d := range rep.Duplicates {
			if i == show {
				fmt.Fprintf(out, "  ... and %d more (--json lists them all)\n", n-show)
				break
			}
			fmt.Fprintf(out, "  %s  %s  by %s (%s)\n", d.Source, d.CID, d.Contributor, d.Status)
		}
	}
	if n := len(rep.Failed); n > 0 {
		fmt.Fprintf(out, "%d %s not contributed:\n", n, plural(n, "record was", "records were"))
		for i, d := range rep.Failed {
			if i == show {
				fmt.Fprintf(out, "  ... and %d more (--json lists them all)\n", n-show)
				break
			}
			fmt.Fprintf(out, "  %s  %s: %s\n", d.Source, d.CID, d.Reason)
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func cidBytes(s string) ([]byte, error) {
	c, err := content.ParseCID(s)
	if err != nil {
		return nil, err
	}
	return c.Bytes(), nil
}

func newDatanetPendingCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "pending NAME",
		Short: "List a datanet's records that wait for the owner's approval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listRecords(cmd, &f, args[0], state.RecordQuery{Status: state.RecordPending})
		},
	}
	f.register(cmd, true)
	return cmd
}

func newDatanetRecordsCmd() *cobra.Command {
	var f clientFlags
	var version uint32
	var status string
	cmd := &cobra.Command{
		Use:   "records NAME",
		Short: "List a datanet's records: all in contribution order, or one version's in order",
		Long: `List a datanet's records with their CID, size, contributor and status: every record in the order it was
contributed, or with --version N the records of version N in their order (the list its root names).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := state.RecordQuery{Version: version}
			if status != "" {
				var err error
				if q.Status, err = state.ParseRecordStatus(status); err != nil {
					return fmt.Errorf("--status %w", err)
				}
			}
			return listRecords(cmd, &f, args[0], q)
		},
	}
	f.register(cmd, true)
	cmd.Flags().Uint32Var(&version, "version", 0, "list the records of this version")
	cmd.Flags().StringVar(&status, "status", "", "only records with this status: pending, approved or rejected")
	return cmd
}

func listRecords(cmd *cobra.Command, f *clientFlags, name string, q state.RecordQuery) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if _, err := getDatanet(ctx, c, name); err != nil {
		return err
	}
	recs, err := c.AllRecords(ctx, name, q)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.json {
		return printJSON(out, map[string]any{"records": recs})
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "CID\tSIZE\tCONTRIBUTOR\tSTATUS\tVERSION\tHEIGHT")
	for _, r := range recs {
		v := "-"
		if r.Status == state.RecordApproved {
			v = fmt.Sprint(r.Version)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.CID, bytesIEC(r.Size), r.Contributor, r.Status, v, r.Height)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d %s\n", len(recs), plural(len(recs), "record", "records"))
	return nil
}

// ApproveReport is what `datanet approve --json` prints.
type ApproveReport struct {
	Datanet     string          `json:"datanet"`
	Approved    []string        `json:"approved"`
	NotApproved []RecordOutcome `json:"not_approved"`
	Versions    []state.Version `json:"versions"` // the versions this command made
}

func newDatanetApproveCmd() *cobra.Command {
	var f signFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "approve NAME [RECORD...|--all]",
		Short: "Approve pending records (owner only); each approval makes a new version",
		Long: `Approve pending records of a datanet this node's account owns. Before signing, the node fetches every
record from the network (unless it already holds it) and verifies it: its bytes hash to its CID, its size is the
contribution's, and a text datanet's record is valid UTF-8. Records that fail are not approved and are listed
with the reason; reject them with ` + "`shoulders datanet reject`" + `. Each approval transaction makes a new version.`,
		Example: `  shoulders datanet approve poems --all
  shoulders datanet approve poems bafkreia... bafkreib...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, cids := args[0], args[1:]
			if all == (len(cids) > 0) {
				return errors.New("name the records to approve, or give --all (not both)")
			}
			ctx := cmd.Context()
			a, err := f.open(ctx)
			if err != nil {
				return err
			}
			d, err := getDatanet(ctx, a.c, name)
			if err != nil {
				return err
			}
			if d.Datanet.Owner != a.addr {
				return fmt.Errorf("datanet %s is owned by %s; only its owner can approve records (this account is %s)", name, d.Datanet.Owner, a.addr)
			}
			if all {
				pending, err := a.c.AllRecords(ctx, name, state.RecordQuery{Status: state.RecordPending})
				if err != nil {
					return err
				}
				for _, r := range pending {
					cids = append(cids, r.CID)
				}
				if len(cids) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "nothing to approve: datanet %s has no pending records\n", name)
					return nil
				}
			}
			rep, err := approve(ctx, a, name, cids, d.Versions)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "approved %d %s of datanet %s\n", len(rep.Approved), plural(len(rep.Approved), "record", "records"), name)
				for _, v := range rep.Versions {
					fmt.Fprintf(out, "version %d: %d records (%d new), root %s, at height %d\n", v.Version, v.Records, v.Added, v.Root, v.Height)
				}
				if n := len(rep.NotApproved); n > 0 {
					fmt.Fprintf(out, "%d %s not approved:\n", n, plural(n, "record was", "records were"))
					for _, r := range rep.NotApproved {
						fmt.Fprintf(out, "  %s: %s\n", r.CID, r.Reason)
					}
				}
			}
			if len(rep.NotApproved) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d records were not approved", len(rep.NotApproved))}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "approve every pending record")
	return cmd
}

// approve has the node fetch and verify the records, then signs approvals of those that passed, at most
// the chain's limit of records per transaction, and waits for them to commit.
func approve(ctx context.Context, a *account, name string, cids []string, before []state.Version) (*ApproveReport, error) {
	rep := &ApproveReport{Datanet: name, Approved: []string{}, NotApproved: []RecordOutcome{}, Versions: []state.Version{}}
	var good []string
	const checkBatch = 64
	for start := 0; start < len(cids); start += checkBatch {
		batch := cids[start:min(start+checkBatch, len(cids))]
		for _, s := range batch {
			if _, err := content.ParseCID(s); err != nil {
				return nil, fmt.Errorf("RECORD %q: %w", s, err)
			}
		}
		res, err := a.c.CheckRecords(ctx, name, batch)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			if r.OK {
				good = append(good, r.CID)
			} else {
				rep.NotApproved = append(rep.NotApproved, RecordOutcome{CID: r.CID, Reason: r.Reason})
			}
		}
	}
	batches, res, err := submitBatches(ctx, a, name, 0, good, func(batch []string) (state.Payload, error) {
		pl := &state.DatanetApprove{Datanet: name}
		for _, s := range batch {
			c, err := cidBytes(s)
			if err != nil {
				return nil, err
			}
			pl.CIDs = append(pl.CIDs, c)
		}
		return pl, nil
	})
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return rep, nil
	}
	for i, st := range res {
		if why := txOutcome(st); why != "" {
			for _, c := range batches[i] {
				rep.NotApproved = append(rep.NotApproved, RecordOutcome{CID: c, Reason: why})
			}
			continue
		}
		rep.Approved = append(rep.Approved, batches[i]...)
	}
	after, err := a.c.Datanet(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(after.Versions) > len(before) {
		rep.Versions = after.Versions[len(before):]
	}
	return rep, nil
}

func newDatanetRejectCmd() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "reject NAME RECORD...",
		Short: "Reject pending records (owner only)",
		Long: `Reject pending records of a datanet this node's account owns. A rejected record stays on the ledger as
rejected, so the same content contributed again is a duplicate.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, cids := args[0], args[1:]
			ctx := cmd.Context()
			a, err := f.open(ctx)
			if err != nil {
				return err
			}
			pl := &state.DatanetReject{Datanet: name}
			for _, s := range cids {
				c, err := cidBytes(s)
				if err != nil {
					return fmt.Errorf("RECORD %q: %w", s, err)
				}
				pl.CIDs = append(pl.CIDs, c)
			}
			res, err := a.submit(ctx, true, pl)
			if err != nil {
				return err
			}
			if why := txOutcome(res[0]); why != "" {
				return &exitError{code: 1, err: fmt.Errorf("nothing was rejected: %s", why)}
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), res[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rejected %d %s of datanet %s at height %d\n", len(cids), plural(len(cids), "record", "records"), name, res[0].Height)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newDatanetListCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the datanets on the ledger",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var all []*state.Datanet
			after := ""
			for {
				page, err := c.Datanets(ctx, after, 0)
				if err != nil {
					return err
				}
				all = append(all, page...)
				if len(page) < state.MaxQueryLimit {
					break
				}
				after = page[len(page)-1].Name
			}
			out := cmd.OutOrStdout()
			if f.json {
				if all == nil {
					all = []*state.Datanet{}
				}
				return printJSON(out, map[string]any{"datanets": all})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tTYPE\tOWNER\tVERSION\tRECORDS\tPENDING\tLICENCE\tTAGS")
			for _, d := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", d.Name, d.RecordType, short(d.Owner.String()), d.Versions, d.Approved, d.Pending, orDash(nonEmpty(d.License)), orDash(d.Tags))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d %s\n", len(all), plural(len(all), "datanet", "datanets"))
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func newDatanetShowCmd() *cobra.Command {
	var f clientFlags
	var version uint32
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a datanet and its versions, or one version with its records",
		Long: `Show a datanet: owner, type, licence, counts and every version. With --version N, show that version and
check its root: the CLI reads the version's record list and recomputes the CID the ledger committed to.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			d, err := getDatanet(ctx, c, name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if version == 0 {
				if f.json {
					return printJSON(out, d)
				}
				dn := d.Datanet
				fmt.Fprintf(out, "datanet %s\n  owner        %s\n  type         %s\n  licence      %s\n  description  %s\n  tags         %s\n  created at   height %d\n  records      %d approved, %d pending, %d rejected (%d contributed)\n",
					dn.Name, dn.Owner, dn.RecordType, orDash(nonEmpty(dn.License)), orDash(nonEmpty(dn.Description)), orDash(dn.Tags), dn.Created,
					dn.Approved, dn.Pending, dn.Rejected, dn.Contributed)
				if len(d.Versions) == 0 {
					fmt.Fprintln(out, "no versions yet: the owner has approved nothing")
					return nil
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "VERSION\tRECORDS\tADDED\tHEIGHT\tROOT")
				for _, v := range d.Versions {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\n", v.Version, v.Records, v.Added, v.Height, v.Root)
				}
				return tw.Flush()
			}
			if version > uint32(len(d.Versions)) {
				return fmt.Errorf("datanet %s has %d versions, not %d", name, len(d.Versions), version)
			}
			v := d.Versions[version-1]
			recs, err := c.AllRecords(ctx, name, state.RecordQuery{Version: version})
			if err != nil {
				return err
			}
			verified := state.VersionRoot(recs) == v.Root
			if f.json {
				return printJSON(out, map[string]any{"datanet": name, "version": v, "records": recs, "root_verified": verified})
			}
			fmt.Fprintf(out, "datanet %s version %d: %d records (%d new), approved at height %d\nroot %s", name, v.Version, v.Records, v.Added, v.Height, v.Root)
			if verified {
				fmt.Fprintln(out, " (verified: it is the CID of the record list below)")
			} else {
				fmt.Fprintln(out, " (MISMATCH: the record list the node returned does not hash to this root)")
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "#\tCID\tSIZE\tCONTRIBUTOR")
			for _, r := range recs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Position, r.CID, bytesIEC(r.Size), r.Contributor)
			}
			tw.Flush()
			if !verified {
				return &exitError{code: 1, err: errors.New("the version's root does not match its record list")}
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().Uint32Var(&version, "version", 0, "show this version and its records")
	return cmd
}
