package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
)

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Read the ledger: chain status, blocks, accounts, transactions",
	}
	cmd.AddCommand(newLedgerStatusCmd(), newLedgerBlockCmd(), newLedgerAccountCmd(), newLedgerTxCmd())
	return cmd
}

func newLedgerStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the chain's height, app hash, last block time and validators",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			s, err := c.LedgerStatus(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, s)
			}
			role := "observer (follows the chain)"
			if s.Validator {
				role = "validator"
			}
			fmt.Fprintf(out, "chain:       %s\nheight:      %d\napp hash:    %s\nlast block:  %s at %s\nthis node:   %s\nmempool:     %d transactions\nminimum fee: %d\n",
				s.ChainID, s.Height, s.AppHash, s.LastBlockHash, s.LastBlockTime.Local().Format(time.RFC3339Nano), role, s.Mempool, s.MinFee)
			tw := newTable(out)
			fmt.Fprintln(tw, "VALIDATOR\tPOWER")
			for _, v := range s.Validators {
				fmt.Fprintf(tw, "%s\t%d\n", v.Address, v.Power)
			}
			return tw.Flush()
		},
	}
	f.register(cmd, true)
	return cmd
}

func newLedgerBlockCmd() *cobra.Command {
	var f clientFlags
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "block HEIGHT",
		Short: "Show a block: header, certificate, and each transaction with what became of it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || h == 0 {
				return fmt.Errorf("HEIGHT %q: want a block height (1, 2, ...)", args[0])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			b, err := c.Block(cmd.Context(), h, wait, false)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, b)
			}
			fmt.Fprintf(out, "block %d  %s\n  time:      %s\n  proposer:  %s (round %d)\n  previous:  %s\n  app hash:  %s (after block %d)\n  signed by: %d validators in round %d\n  %d transactions\n",
				b.Height, b.Hash, b.Time.Local().Format(time.RFC3339Nano), b.Proposer, b.Round, b.PrevHash, b.AppHash, b.Height-1,
				len(b.Certificate.Signers), b.Certificate.Round, len(b.Txs))
			tw := newTable(out)
			fmt.Fprintln(tw, "HASH\tKIND\tFROM\tTO\tAMOUNT\tFEE\tRESULT")
			for _, tx := range b.Txs {
				to, amount := "-", "-"
				if tx.To != nil {
					to = short(tx.To.String())
				}
				if tx.Amount != nil {
					amount = fmt.Sprint(uint64(*tx.Amount))
				}
				result := tx.Code
				if tx.Reason != "" {
					result += ": " + tx.Reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", tx.Hash.String()[:16], tx.Kind, short(tx.Sender.String()), to, amount, uint64(tx.Fee), result)
			}
			return tw.Flush()
		},
	}
	f.register(cmd, true)
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long (at most 1m) for the block to be committed")
	return cmd
}

func newLedgerAccountCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "account [ADDRESS]",
		Short: "Show an account's balance and nonce (the node's own without ADDRESS)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			addr := ""
			if len(args) == 1 {
				addr = args[0]
			} else {
				info, err := c.Node(cmd.Context())
				if err != nil {
					return err
				}
				addr = info.PeerID
			}
			a, err := c.Account(cmd.Context(), addr)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, a)
			}
			fmt.Fprintf(out, "account: %s\nbalance: %d\nnonce:   %d", a.Address, uint64(a.Balance), a.Nonce)
			if a.PendingNonce != a.Nonce {
				fmt.Fprintf(out, " (%d more pending)", a.PendingNonce-a.Nonce)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newLedgerTxCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "tx HASH",
		Short: "Show a transaction: committed (at which height, with what result) or pending",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.Tx(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, st)
			}
			printTxStatus(out, st)
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func printTxStatus(out interface{ Write([]byte) (int, error) }, st node.TxStatus) {
	fmt.Fprintf(out, "transaction %s\n  status: %s", st.Hash, st.Status)
	switch st.Status {
	case "committed":
		fmt.Fprintf(out, " at height %d", st.Height)
		if st.Index != nil {
			fmt.Fprintf(out, " (position %d)", *st.Index)
		}
		fmt.Fprintf(out, "\n  result: %s", st.Code)
		if st.Reason != "" {
			fmt.Fprintf(out, ": %s", st.Reason)
		}
	case "refused":
		fmt.Fprintf(out, ": %s", st.Error)
	}
	fmt.Fprintln(out)
	if tx := st.Tx; tx != nil {
		fmt.Fprintf(out, "  %s from %s (nonce %d, fee %d)", tx.Kind, tx.Sender, tx.Nonce, uint64(tx.Fee))
		if tx.To != nil && tx.Amount != nil {
			fmt.Fprintf(out, ": %d to %s", uint64(*tx.Amount), tx.To)
		}
		fmt.Fprintln(out)
	}
}

func newTransferCmd() *cobra.Command {
	var f clientFlags
	var home string
	var fee uint64
	var wait bool
	cmd := &cobra.Command{
		Use:   "transfer TO AMOUNT",
		Short: "Send AMOUNT to the account TO, signed with the node's key",
		Long: `Sign a transfer of AMOUNT from the account of the node at --home (its key is its account) to TO (a peer ID),
with the account's next nonce, and submit it to the node's API. With --wait, return once it is committed,
with the height. The fee defaults to the chain's minimum.`,
		Example: `  shoulders transfer 12D3KooWRs1nC5WuvSxiuoRotEf2atSZmwdh12eVVcEu4C1ZK1wS 1000 --wait`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := state.ParseAddress(args[0])
			if err != nil {
				return fmt.Errorf("TO %q: %w", args[0], err)
			}
			amount, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil || amount == 0 {
				return fmt.Errorf("AMOUNT %q: want a whole number above 0", args[1])
			}
			ctx := cmd.Context()
			a, err := openAccount(ctx, home, &f)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("fee") {
				fee = uint64(a.status.MinFee)
			}
			from, nonce := a.addr, a.nonce
			raw, err := a.sign(fee, &state.Transfer{To: to, Amount: amount})
			if err != nil {
				return err
			}
			res, err := a.c.Submit(ctx, [][]byte{raw}, wait)
			if err != nil {
				var apiErr *node.APIError
				if errors.As(err, &apiErr) {
					return fmt.Errorf("the node refused the transfer: %s", apiErr.Message)
				}
				return err
			}
			out := cmd.OutOrStdout()
			st := res[0]
			// The exit status is the same with --json: 1 when the transfer failed or, with --wait, did not
			// commit in time.
			var failed error
			switch {
			case st.Status == "committed" && st.Code != "ok":
				failed = fmt.Errorf("committed at height %d but it changed nothing: %s: %s", st.Height, st.Code, st.Reason)
			case st.Status != "committed" && wait:
				failed = errors.New("not committed within a minute; `shoulders ledger tx` will tell")
			}
			if f.json {
				if err := printJSON(out, st); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "transfer of %d from %s to %s (fee %d, nonce %d)\n", amount, from, to, fee, nonce)
				if st.Status == "committed" && st.Code == "ok" {
					fmt.Fprintf(out, "committed at height %d: transaction %s\n", st.Height, st.Hash)
				} else if st.Status != "committed" {
					fmt.Fprintf(out, "submitted: transaction %s is %s\n", st.Hash, st.Status)
				}
			}
			if failed != nil {
				return &exitError{code: 1, err: failed}
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&home, "home", defaultHome(), "home of the node whose key signs (and whose API is used unless --api)")
	cmd.Flags().Uint64Var(&fee, "fee", 0, "fee (default: the chain's minimum)")
	cmd.Flags().BoolVar(&wait, "wait", false, "return once the transfer is committed, with its height")
	return cmd
}

func newDebugConsensusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "consensus",
		Short: "Show the consensus round state: height, round, step, locks, and every vote of this height",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			v, err := c.Consensus(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, v)
			}
			fmt.Fprintf(out, "height %d, round %d, step %s; proposer %s\n", v.Height, v.Round, v.Step, short(v.Proposer))
			if v.LockedBlock != "" {
				fmt.Fprintf(out, "locked on %s in round %d\n", v.LockedBlock[:16], v.LockedRound)
			}
			for _, r := range v.Rounds {
				fmt.Fprintf(out, "round %d: proposal %s\n", r.Round, orDash([]string{trim16(r.Proposal)}))
				tw := newTable(out)
				fmt.Fprintln(tw, "  VALIDATOR\tPREVOTE\tPRECOMMIT")
				for i := range r.Prevotes {
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", short(r.Prevotes[i].Validator), trim16(r.Prevotes[i].Vote), trim16(r.Precommits[i].Vote))
				}
				tw.Flush()
			}
			fmt.Fprintf(out, "messages accepted %d, decided %d heights, evidence %d\n", v.Accepted, v.Decided, v.Evidence)
			if len(v.Dropped) > 0 {
				var parts []string
				for k, n := range v.Dropped {
					parts = append(parts, fmt.Sprintf("%s %d", k, n))
				}
				fmt.Fprintf(out, "dropped: %s\n", strings.Join(parts, ", "))
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func trim16(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

func newDebugMempoolCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "mempool",
		Short: "Show the mempool: pending transactions, the longest sender queues, what it admitted and dropped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			m, err := c.Mempool(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), m)
		},
	}
	f.register(cmd, false)
	return cmd
}
