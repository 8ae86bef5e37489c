// Command shoulders is the one binary of the Shoulders network: the node itself (`shoulders node`), a whole
// network on loopback (`shoulders devnet`), and the CLI verbs that talk to a running node over its HTTP API.
//
// The command layer is thin: it parses flags, calls into the packages below it and prints what they return,
// tables for people and JSON (`--json`) for programs. Each verb group lives in a file of its own and is added
// to the root in newRootCmd.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoulders:", err)
	}
	os.Exit(exitCode(err))
}

// newRootCmd builds the command tree. Every verb group adds itself here, by hand.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "shoulders",
		Short:         "A peer-to-peer network for paid, attributed AI work",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newInitCmd(),
		newNodeCmd(),
		newDevnetCmd(),
		newIDCmd(),
		newPeersCmd(),
		newWorkersCmd(),
		newContentCmd(),
		newCatalogCmd(),
		newDatanetCmd(),
		newLedgerCmd(),
		newTransferCmd(),
		newDebugCmd(),
		newBenchCmd(),
		newSimCmd(),
		newAttributionCmd(),
		newVersionCmd(),
	)
	return root
}

// exitError carries a specific exit status out of a command (for example a simulator run that found a
// safety violation exits 1 after printing its report).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
