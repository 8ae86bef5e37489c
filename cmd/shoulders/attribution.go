package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shouldersnet/shoulders/attribution"
	"github.com/shouldersnet/shoulders/attribution/corpus"
	"github.com/shouldersnet/shoulders/attribution/index"
	"github.com/spf13/cobra"
)

// newAttributionCmd groups the verbs that work on an attribution index in a directory: no node needed.
func newAttributionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attribution",
		Short: "Index a corpus, generate with the ∞-gram model, and attribute text to records (local files, no node)",
	}
	cmd.AddCommand(
		newAttributionIndexCmd(),
		newAttributionInfoCmd(),
		newAttributionCountCmd(),
		newAttributionGenerateCmd(),
		newAttributionExplainCmd(),
		newAttributionVerifyCmd(),
	)
	return cmd
}

func newAttributionIndexCmd() *cobra.Command {
	var (
		out, contributor    string
		splitLines, jsonl   bool
		gcide, textOnly, js bool
		maxVocab            int
	)
	cmd := &cobra.Command{
		Use:   "index --out DIR [--split-lines | --jsonl | --gcide] [--contributor NAME] FILE...",
		Short: "Build an attribution index over records read from files",
		Long: `Build an attribution index over a corpus and write it to DIR (new or empty).

Each FILE is one record, its ID the path, unless --split-lines (one record per non-empty line, ID "path:line")
or --jsonl (one JSON object per line: "text", and optionally "id" and "contributor"). --contributor names the
contributor of every record (required unless each JSON line names its own). --gcide indexes the dictionary
installed by Debian's dict-gcide package instead of files, one record per entry, credited to "gcide-<letter>".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out DIR is required")
			}
			var recs []index.Record
			var err error
			switch {
			case gcide:
				if len(args) > 0 || splitLines || jsonl {
					return errors.New("--gcide reads the installed dictionary: give no FILE, --split-lines or --jsonl")
				}
				recs, err = corpus.GCIDE(corpus.GCIDEDir, 0)
			case len(args) == 0:
				return errors.New("no input: give FILE... (or --gcide)")
			case splitLines && jsonl:
				return errors.New("--split-lines and --jsonl are exclusive")
			case jsonl:
				recs, err = corpus.JSONL(args, contributor)
			case contributor == "":
				return errors.New("--contributor NAME is required (or use --jsonl with a contributor per line)")
			case splitLines:
				recs, err = corpus.Lines(args, contributor)
			default:
				recs, err = corpus.Files(args, contributor)
			}
			if err != nil {
				return err
			}
			start := time.Now()
			ix, err := index.Build(recs, index.BuildOptions{MaxVocab: maxVocab, TextOnly: textOnly})
			if err != nil {
				return err
			}
			if err := ix.WriteDir(out); err != nil {
				return err
			}
			m := ix.Manifest()
			summary := struct {
				Dir           string  `json:"dir"`
				IndexHash     string  `json:"index_hash"`
				Records       int     `json:"records"`
				Contributors  int     `json:"contributors"`
				TextTokens    int     `json:"text_tokens"`
				Vocab         int     `json:"vocab"`
				Bytes         int64   `json:"bytes"`
				BytesPerToken float64 `json:"bytes_per_token"`
				Seconds       float64 `json:"seconds"`
			}{out, m.IndexHash, m.Records, m.Contributors, ix.TextTokens(), m.Tokenizer.Vocab, m.Bytes(),
				float64(m.Bytes()) / float64(ix.TextTokens()), time.Since(start).Seconds()}
			if js {
				return printJSON(cmd.OutOrStdout(), summary)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "indexed %d records from %d contributors: %d tokens, vocabulary %d\n",
				summary.Records, summary.Contributors, summary.TextTokens, summary.Vocab)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d bytes (%.2f B/token) in %.1fs\nindex hash %s\n",
				out, summary.Bytes, summary.BytesPerToken, summary.Seconds, summary.IndexHash)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write the index to (must not exist or be empty)")
	f.BoolVar(&splitLines, "split-lines", false, "one record per non-empty line")
	f.BoolVar(&jsonl, "jsonl", false, `JSON-lines input: {"text": …, "contributor": …, "id": …} per line`)
	f.BoolVar(&gcide, "gcide", false, "index the GCIDE dictionary from "+corpus.GCIDEDir+" (Debian package "+corpus.GCIDEPackage+")")
	f.StringVar(&contributor, "contributor", "", "contributor credited for the records")
	f.IntVar(&maxVocab, "max-vocab", index.DefaultMaxVocab, "vocabulary bound; above 65536 tokens take 4 bytes instead of 2")
	f.BoolVar(&textOnly, "text-only", false, "refuse records that are not valid UTF-8 (default: keep their bytes)")
	f.BoolVar(&js, "json", false, "print JSON")
	return cmd
}

// openAttributionModel opens the index in dir with the default attribution parameters. The caller closes the index.
func openAttributionModel(dir string) (*attribution.Model, error) {
	if dir == "" {
		return nil, errors.New("--index DIR is required")
	}
	ix, err := index.Open(dir)
	if err != nil {
		return nil, err
	}
	m, err := attribution.New(ix, attribution.DefaultParams())
	if err != nil {
		ix.Close()
		return nil, err
	}
	return m, nil
}

func newAttributionInfoCmd() *cobra.Command {
	var dir string
	var js bool
	cmd := &cobra.Command{
		Use:   "info --index DIR",
		Short: "Check an index (sizes and hashes of every file) and describe it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := openAttributionModel(dir)
			if err != nil {
				return err
			}
			defer m.Index().Close()
			man := m.Index().Manifest()
			if js {
				return printJSON(cmd.OutOrStdout(), man)
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintf(w, "index hash\t%s\n", man.IndexHash)
			fmt.Fprintf(w, "records\t%d\ncontributors\t%d\ntext tokens\t%d\n", man.Records, man.Contributors, m.Index().TextTokens())
			fmt.Fprintf(w, "tokenizer\tv%d, Unicode %s, vocabulary %d, %s\n", man.Tokenizer.Version, man.Tokenizer.Unicode, man.Tokenizer.Vocab, man.Tokenizer.Hash)
			fmt.Fprintf(w, "on disk\t%d bytes, %.2f B/token (%d-byte tokens, %d-bit suffix array)\n",
				man.Bytes(), float64(man.Bytes())/float64(m.Index().TextTokens()), man.TokenBytes, man.SABits)
			for _, p := range man.Parts {
				fmt.Fprintf(w, "  %s\t%d bytes\tsha256 %s\n", p.Name, p.Size, p.SHA256)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "index", "", "index directory")
	cmd.Flags().BoolVar(&js, "json", false, "print the manifest as JSON")
	return cmd
}

func newAttributionCountCmd() *cobra.Command {
	var dir string
	var js bool
	var show int
	cmd := &cobra.Command{
		Use:   "count --index DIR TEXT",
		Short: "Count the occurrences of TEXT's token sequence and show where some are",
		Long: `Count the occurrences of the token sequence of TEXT in the index.

Words inside a sentence carry their leading space as part of their token: count " cat" (with the space) to
find the word mid-sentence, "cat" to find it at the start of a record or after punctuation.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := openAttributionModel(dir)
			if err != nil {
				return err
			}
			defer m.Index().Close()
			ix := m.Index()
			if len(args[0]) > attribution.MaxPromptBytes {
				return fmt.Errorf("TEXT is %d bytes, limit %d", len(args[0]), attribution.MaxPromptBytes)
			}
			if show < 0 || show > index.MaxSupport {
				return fmt.Errorf("--occurrences is %d, must be in [0, %d]", show, index.MaxSupport)
			}
			pattern := ix.Tokenizer().Encode(nil, []byte(args[0]))
			r := ix.Find(pattern)
			type occ struct {
				Record      string `json:"record"`
				Contributor string `json:"contributor"`
				Offset      int    `json:"offset"`
			}
			res := struct {
				Text        string `json:"text"`
				Tokens      int    `json:"tokens"`
				Count       int    `json:"count"`
				Occurrences []occ  `json:"occurrences"`
			}{Text: args[0], Tokens: len(pattern), Count: r.Count(), Occurrences: []occ{}}
			if len(pattern) > 0 && show > 0 {
				for _, o := range ix.Sample(r, show, nil) {
					rec := ix.Record(o.Record)
					res.Occurrences = append(res.Occurrences, occ{rec.ID, ix.Contributor(rec.Contributor), o.Offset})
				}
			}
			if js {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d occurrences of %q (%d tokens)\n", res.Count, res.Text, res.Tokens)
			if len(res.Occurrences) > 0 {
				w := newTable(cmd.OutOrStdout())
				fmt.Fprintln(w, "RECORD\tCONTRIBUTOR\tTOKEN OFFSET")
				for _, o := range res.Occurrences {
					fmt.Fprintf(w, "%s\t%s\t%d\n", o.Record, o.Contributor, o.Offset)
				}
				return w.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "index", "", "index directory")
	cmd.Flags().IntVar(&show, "occurrences", 10, "occurrences to list (a stratified sample when there are more)")
	cmd.Flags().BoolVar(&js, "json", false, "print JSON")
	return cmd
}

func newAttributionGenerateCmd() *cobra.Command {
	var dir, prompt, temperature string
	var js bool
	g := attribution.DefaultGenerateParams()
	cmd := &cobra.Command{
		Use:   "generate --index DIR --prompt TEXT [--max-tokens N] [--seed S] [--temperature T]",
		Short: "Continue a prompt with the ∞-gram model and attribute the output",
		Long: `Continue a prompt with the ∞-gram model over the index, reproducibly for a given seed, and print the
output with its attribution: contributors' weights (parts per million, summing to 1,000,000), the top records,
and the verbatim spans. --json prints everything a validator needs to recompute it ("attribution verify").

Temperature 1 samples the ∞-gram distribution exactly, 0 is greedy, others reweight counts by count^(1/T);
it is read as a decimal with at most three decimals.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTemperature(temperature)
			if err != nil {
				return fmt.Errorf("--temperature: %w", err)
			}
			g.TemperatureMilli = t
			m, err := openAttributionModel(dir)
			if err != nil {
				return err
			}
			defer m.Index().Close()
			res, err := m.Generate(prompt, g)
			if err != nil {
				return err
			}
			if js {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s%s\n\n", prompt, res.Output)
			fmt.Fprintf(w, "(%d tokens, stopped at %s; seed %d, temperature %s)\n", len(res.OutputTokens), res.Stop, g.Seed, formatTemperature(g.TemperatureMilli))
			return printAttribution(w, res.Attribution)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "index", "", "index directory")
	f.StringVar(&prompt, "prompt", "", "text to continue")
	f.IntVar(&g.MaxTokens, "max-tokens", g.MaxTokens, fmt.Sprintf("most tokens to generate (at most %d)", attribution.MaxOutputTokens))
	f.Uint64Var(&g.Seed, "seed", g.Seed, "seed of the sampler")
	f.StringVar(&temperature, "temperature", "1", "sampling temperature, 0 (greedy) to 10")
	f.IntVar(&g.MaxSupport, "max-support", g.MaxSupport, "continuations considered per step at temperatures other than 0 and 1")
	f.BoolVar(&js, "json", false, "print JSON")
	return cmd
}

func newAttributionExplainCmd() *cobra.Command {
	var dir, text string
	var js bool
	cmd := &cobra.Command{
		Use:   "explain --index DIR --text TEXT",
		Short: "Attribute a given text to the records and contributors it comes from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if text == "" {
				return errors.New("--text TEXT is required")
			}
			m, err := openAttributionModel(dir)
			if err != nil {
				return err
			}
			defer m.Index().Close()
			res, err := m.Explain(text)
			if err != nil {
				return err
			}
			if js {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "(%d tokens)\n", len(res.Tokens))
			return printAttribution(cmd.OutOrStdout(), res.Attribution)
		},
	}
	cmd.Flags().StringVar(&dir, "index", "", "index directory")
	cmd.Flags().StringVar(&text, "text", "", "text to attribute")
	cmd.Flags().BoolVar(&js, "json", false, "print JSON")
	return cmd
}

func newAttributionVerifyCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "verify --index DIR RESULT.json",
		Short: "Recompute a generate or explain result (its --json output) and check that it matches",
		Long: `Recompute a result printed by "attribution generate --json" or "attribution explain --json" on this index,
with the parameters the result names, and check every field. Exits 1, naming the first field that differs,
when it does not match. RESULT.json may be "-" for standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			data, err := io.ReadAll(io.LimitReader(r, 64<<20))
			if err != nil {
				return err
			}
			var probe map[string]json.RawMessage
			if err := json.Unmarshal(data, &probe); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			m, err := openAttributionModel(dir)
			if err != nil {
				return err
			}
			defer m.Index().Close()
			var what string
			if _, ok := probe["output_tokens"]; ok {
				var g attribution.Generation
				if err := decodeStrictJSON(data, &g); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				what, err = "generation", m.Verify(&g)
			} else {
				var e attribution.Explanation
				if err := decodeStrictJSON(data, &e); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				what, err = "explanation", m.VerifyExplanation(&e)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: the %s matches its recomputation on index %s\n", what, m.Index().Hash())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "index", "", "index directory")
	return cmd
}

func decodeStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func printAttribution(w io.Writer, a attribution.Attribution) error {
	fmt.Fprintf(w, "index %s\n", a.IndexHash)
	if a.Unattributed {
		fmt.Fprintf(w, "unattributed: no token carries weight (%d generic, %d not in the index)\n", a.Generic, a.Unmatched)
		return nil
	}
	fmt.Fprintf(w, "%d tokens (%d generic, %d not in the index)\n\n", a.Tokens, a.Generic, a.Unmatched)
	t := newTable(w)
	fmt.Fprintln(t, "CONTRIBUTOR\tSHARE\tWEIGHT PPM")
	for _, c := range a.Contributors {
		fmt.Fprintf(t, "%s\t%.2f%%\t%d\n", c.Contributor, float64(c.WeightPPM)/1e4, c.WeightPPM)
	}
	fmt.Fprintln(t)
	fmt.Fprintln(t, "RECORD\tCONTRIBUTOR\tSHARE")
	for _, r := range a.Records {
		fmt.Fprintf(t, "%s\t%s\t%.2f%%\n", r.Record, r.Contributor, float64(r.WeightPPM)/1e4)
	}
	if len(a.Spans) > 0 {
		fmt.Fprintln(t)
		fmt.Fprintln(t, "SPAN\tOCCURS\tRECORDS\tTEXT")
		for _, s := range a.Spans {
			text := strings.Join(strings.Fields(s.Text), " ")
			if len(text) > 60 {
				text = text[:57] + "..."
			}
			fmt.Fprintf(t, "%d-%d\t%d\t%s\t%q\n", s.Start, s.End, s.Count, strings.Join(s.Records, ","), text)
		}
	}
	return t.Flush()
}

// parseTemperature reads a non-negative decimal with at most three decimals as thousandths: "0.7" is 700.
func parseTemperature(s string) (int, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || len(frac) > 3 || strings.HasPrefix(whole, "-") || strings.HasPrefix(whole, "+") {
		return 0, fmt.Errorf("%q is not a decimal like 0.7 with at most three decimals", s)
	}
	w := 0
	if whole != "" {
		v, err := strconv.Atoi(whole)
		if err != nil || v > attribution.MaxTemperatureMilli/1000 {
			return 0, fmt.Errorf("%q is not a number from 0 to %d", s, attribution.MaxTemperatureMilli/1000)
		}
		w = v
	}
	f := 0
	if frac != "" {
		v, err := strconv.Atoi(frac + strings.Repeat("0", 3-len(frac)))
		if err != nil || strings.HasPrefix(frac, "-") || strings.HasPrefix(frac, "+") {
			return 0, fmt.Errorf("%q is not a decimal like 0.7", s)
		}
		f = v
	}
	if m := w*1000 + f; m <= attribution.MaxTemperatureMilli {
		return m, nil
	}
	return 0, fmt.Errorf("%q is above %d", s, attribution.MaxTemperatureMilli/1000)
}

func formatTemperature(m int) string {
	s := fmt.Sprintf("%d.%03d", m/1000, m%1000)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
