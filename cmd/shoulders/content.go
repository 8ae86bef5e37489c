package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p/content"
)

func newContentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "content",
		Short: "Content-addressed blobs: put, get, list, and find who provides one",
		Long: `Blobs are named by their CID (CIDv1, sha2-256): a blob of up to 1 MiB is one raw block, a larger one is cut
into 1 MiB chunks listed by a manifest whose CID names the whole. A node keeps what it is given or fetches,
provides it in the DHT, and serves it to other nodes; whatever it fetches it verifies against the CID.`,
	}
	cmd.AddCommand(newContentPutCmd(), newContentGetCmd(), newContentProvidersCmd(), newContentListCmd())
	return cmd
}

// contentPut is one line of `content put`.
type contentPut struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
	Name string `json:"name"`
}

func newContentPutCmd() *cobra.Command {
	var f clientFlags
	var home string
	cmd := &cobra.Command{
		Use:   "put FILE...",
		Short: "Store files on the node as blobs, pinned and provided; print each one's CID",
		Example: `  shoulders content put model.safetensors notes.txt
  shoulders content put - < record.json      # "-" reads stdin`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			c = c.WithToken(node.LoadToken(home))
			out := cmd.OutOrStdout()
			var puts []contentPut
			for _, name := range args {
				p, err := putFile(cmd.Context(), c, cmd.InOrStdin(), name)
				if err != nil {
					return err
				}
				if !f.json {
					fmt.Fprintf(out, "%s\t%d\t%s\n", p.CID, p.Size, p.Name)
				}
				puts = append(puts, p)
			}
			if f.json {
				return printJSON(out, map[string]any{"blobs": puts})
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&home, "home", defaultHome(), "home of the node, for its API token when the API is reachable beyond loopback")
	return cmd
}

func putFile(ctx context.Context, c *node.Client, stdin io.Reader, name string) (contentPut, error) {
	var r io.Reader = stdin
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return contentPut{}, err
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.IsDir() {
			return contentPut{}, fmt.Errorf("%s is a directory; give files", name)
		}
		r = file
	}
	id, size, err := c.PutContent(ctx, r)
	if err != nil {
		return contentPut{}, fmt.Errorf("%s: %w", name, err)
	}
	return contentPut{CID: id, Size: size, Name: name}, nil
}

func newContentGetCmd() *cobra.Command {
	var f clientFlags
	var outFile string
	var local bool
	cmd := &cobra.Command{
		Use:   "get CID",
		Short: "Write a blob's bytes to a file or stdout, fetching it from the network first if the node lacks it",
		Long: `Write the blob CID names to -o FILE (or stdout). When the node does not have it, it finds providers through
the DHT, fetches every chunk from them (several at once, each verified against its CID), pins it and provides it;
then the bytes stream here. With a terminal on stderr a progress line shows how much has arrived.`,
		Example: `  shoulders content get bafybei... -o model.safetensors`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := content.ParseCID(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			body, size, err := c.GetContent(cmd.Context(), args[0], local)
			if err != nil {
				return err
			}
			defer body.Close()
			var w io.Writer = cmd.OutOrStdout()
			var tmp *os.File
			if outFile != "" && outFile != "-" {
				// Write beside the target and rename at the end, so a failed transfer leaves no partial file.
				tmp, err = os.CreateTemp(filepath.Dir(outFile), "."+filepath.Base(outFile)+".part-*")
				if err != nil {
					return err
				}
				defer func() {
					tmp.Close()
					os.Remove(tmp.Name())
				}()
				w = tmp
			}
			var src io.Reader = body
			if p := newProgress(cmd.ErrOrStderr(), size); p != nil {
				src = io.TeeReader(body, p)
				defer p.finish()
			}
			n, err := io.Copy(w, src)
			if err != nil {
				return fmt.Errorf("receiving %s after %d bytes: %w", args[0], n, err)
			}
			if size >= 0 && n != size {
				return fmt.Errorf("receiving %s: %d bytes of %d arrived", args[0], n, size)
			}
			if tmp != nil {
				if err := tmp.Close(); err != nil {
					return err
				}
				if err := os.Rename(tmp.Name(), outFile); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVarP(&outFile, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().BoolVar(&local, "local", false, "only what the node has: do not fetch from the network")
	return cmd
}

// progress draws a one-line progress bar on a terminal as bytes pass through it.
type progress struct {
	w          io.Writer
	total      int64
	done       int64
	start      time.Time
	lastUpdate time.Time
}

// newProgress returns a progress bar on w, or nil when w is not a terminal.
func newProgress(w io.Writer, total int64) *progress {
	f, ok := w.(*os.File)
	if !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return nil
	}
	now := time.Now()
	return &progress{w: w, total: total, start: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if now := time.Now(); now.Sub(p.lastUpdate) >= 100*time.Millisecond {
		p.lastUpdate = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3)
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s  %s/s   ", bytesIEC(uint64(p.done)), bytesIEC(uint64(rate)))
		return
	}
	const width = 30
	frac := float64(p.done) / float64(p.total)
	bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %s / %s  %s/s   ", bar, 100*frac, bytesIEC(uint64(p.done)), bytesIEC(uint64(p.total)), bytesIEC(uint64(rate)))
}

func (p *progress) finish() {
	p.draw()
	fmt.Fprintln(p.w)
}

func newContentProvidersCmd() *cobra.Command {
	var f clientFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "providers CID",
		Short: "List the peers that provide a blob, found through the DHT",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := content.ParseCID(args[0]); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			provs, err := c.ContentProviders(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"providers": provs})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "PEER\tADDRESSES")
			for _, p := range provs {
				fmt.Fprintf(tw, "%s\t%s\n", p.PeerID, orDash(p.Addrs))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d providers\n", len(provs))
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many providers (1 to 100)")
	return cmd
}

func newContentListCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the blobs on the node: CID, size, pinned, complete",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			blobs, err := c.ListContent(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, map[string]any{"blobs": blobs})
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "CID\tSIZE\tPINNED\tCOMPLETE")
			for _, b := range blobs {
				size := "-"
				if b.Size >= 0 {
					size = bytesIEC(uint64(b.Size))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.CID, size, yesNo(b.Pinned), yesNo(b.Complete))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d blobs\n", len(blobs))
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
