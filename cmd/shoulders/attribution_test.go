package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runAttributionCLI executes the shoulders command tree with args and returns stdout and the error.
func runAttributionCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestAttributionCLI(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.jsonl")
	lines := []string{
		`{"id":"giants","contributor":"newton","text":"If I have seen further it is by standing on the shoulders of giants."}`,
		`{"id":"dwarfs","contributor":"bernard","text":"We are like dwarfs sitting on the shoulders of giants, so that we can see more than they."}`,
		`{"id":"apples","contributor":"newton","text":"An apple fell from the tree and the apple was red."}`,
	}
	if err := os.WriteFile(corpus, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "idx")
	out, err := runAttributionCLI(t, "attribution", "index", "--out", idx, "--jsonl", corpus)
	if err != nil || !strings.Contains(out, "indexed 3 records from 2 contributors") {
		t.Fatalf("index: %v\n%s", err, out)
	}

	out, err = runAttributionCLI(t, "attribution", "count", "--index", idx, "--json", " shoulders of giants")
	if err != nil {
		t.Fatal(err)
	}
	var count struct {
		Count       int
		Occurrences []struct{ Record, Contributor string }
	}
	if err := json.Unmarshal([]byte(out), &count); err != nil || count.Count != 2 || len(count.Occurrences) != 2 {
		t.Fatalf("count: %v\n%s", err, out)
	}

	out, err = runAttributionCLI(t, "attribution", "generate", "--index", idx, "--prompt", "If I have seen", "--seed", "4", "--temperature", "0.5", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var gen struct {
		Output      string `json:"output"`
		Attribution struct {
			IndexHash    string `json:"index_hash"`
			Contributors []struct {
				Contributor string `json:"contributor"`
				WeightPPM   int    `json:"weight_ppm"`
			} `json:"contributors"`
			Records []json.RawMessage `json:"records"`
			Spans   []json.RawMessage `json:"spans"`
		} `json:"attribution"`
	}
	if err := json.Unmarshal([]byte(out), &gen); err != nil {
		t.Fatal(err)
	}
	if gen.Output != " further it is by standing on the shoulders of giants." || gen.Attribution.IndexHash == "" ||
		len(gen.Attribution.Contributors) == 0 || gen.Attribution.Contributors[0].Contributor != "newton" ||
		len(gen.Attribution.Records) == 0 || len(gen.Attribution.Spans) == 0 {
		t.Fatalf("generate: %s", out)
	}
	result := filepath.Join(dir, "result.json")
	os.WriteFile(result, []byte(out), 0o644)
	if out, err := runAttributionCLI(t, "attribution", "verify", "--index", idx, result); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("verify of a genuine result: %v\n%s", err, out)
	}
	tampered := strings.Replace(out, `"contributor": "newton"`, `"contributor": "mallory"`, 1)
	os.WriteFile(result, []byte(tampered), 0o644)
	_, err = runAttributionCLI(t, "attribution", "verify", "--index", idx, result)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "contributors differs") {
		t.Fatalf("verify of a tampered result: %v", err)
	}

	out, err = runAttributionCLI(t, "attribution", "explain", "--index", idx, "--text", "sitting on the shoulders of giants, so that we can see")
	if err != nil || !strings.Contains(out, "bernard") || !strings.Contains(out, "dwarfs") {
		t.Fatalf("explain: %v\n%s", err, out)
	}

	// Bad input gets an error that names it.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"attribution", "index", "--out", filepath.Join(dir, "x"), corpus}, "--contributor"},
		{[]string{"attribution", "index", "--out", idx, "--jsonl", corpus}, "not empty"},
		{[]string{"attribution", "generate", "--index", idx, "--temperature", "-1"}, "--temperature"},
		{[]string{"attribution", "generate", "--index", idx, "--max-tokens", "0"}, "max_tokens"},
		{[]string{"attribution", "count", "--index", dir, "x"}, "no manifest.json"},
		{[]string{"attribution", "generate", "--index", idx, "--prompt", strings.Repeat("a ", 3000)}, "prompt is"},
	} {
		if _, err := runAttributionCLI(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.args, err, c.want)
		}
	}
}

func TestParseTemperature(t *testing.T) {
	good := map[string]int{"0": 0, "1": 1000, "0.7": 700, ".5": 500, "2.25": 2250, "10": 10000, "1.": 1000}
	for s, want := range good {
		if got, err := parseTemperature(s); err != nil || got != want {
			t.Errorf("parseTemperature(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "0.0001", "10.5", "abc", "1e3", "+1", "0.-5", "."} {
		if _, err := parseTemperature(s); err == nil {
			t.Errorf("parseTemperature(%q) accepted", s)
		}
	}
}

func TestBenchAttributionSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two small indexes")
	}
	res, err := runAttributionBench(attrBenchOptions{Tokens: 200_000, Words: 2000, Seed: 1, Queries: 200, Outputs: 3, Dir: t.TempDir()}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Corpora[0].Figures {
		if f.Ours <= 0 || (f.Baseline != nil && *f.Baseline <= 0) {
			t.Errorf("figure %q: %v (baseline %v)", f.Name, f.Ours, f.Baseline)
		}
	}
	var buf bytes.Buffer
	if err := printAttributionBench(&buf, res); err != nil || !strings.Contains(buf.String(), "index/suffixarray") && !strings.Contains(buf.String(), "INDEX/SUFFIXARRAY") {
		t.Fatalf("printBench: %v\n%s", err, buf.String())
	}
}
