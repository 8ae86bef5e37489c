package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestSimJSON(t *testing.T) {
	out, _, err := runCLI(t, "sim", "--validators", "4,7", "--seeds", "5", "--seed-start", "100", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep simReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Runs != 10 || len(rep.Configs) != 2 || rep.SafetyViolations != 0 || rep.HeightsCommitted < 100 || rep.RoundsAfterHealP99 < 1 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Configs[1].Validators != 7 || rep.Configs[1].Byzantine != 2 {
		t.Fatalf("7 validators should default to 2 Byzantine: %+v", rep.Configs[1])
	}
}

func TestSimTable(t *testing.T) {
	out, _, err := runCLI(t, "sim", "--validators", "4", "--byzantine", "1", "--seeds", "3", "--faults", "crash,partition")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "partition,crash") || !strings.Contains(out, "3 runs (seeds 1..3)") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestSimRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--validators", "4", "--byzantine", "2"},
		{"sim", "--faults", "fire"},
		{"sim", "--seeds", "2", "--trace"},
	} {
		if _, _, err := runCLI(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
