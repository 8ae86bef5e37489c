package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchContentSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four libp2p hosts and moves a blob five times")
	}
	out, err := run(t, "bench", "content", "--size", "4", "--rounds", "1", "--dir", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, row := range []string{"plain TCP copy", "libp2p stream copy", "fetch from 1 provider", "fetch from 2 provider", "two providers / one"} {
		if !strings.Contains(out, row) {
			t.Errorf("the table has no %q row:\n%s", row, out)
		}
	}
	out, err = run(t, "bench", "content", "--size", "4", "--rounds", "1", "--in-memory", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res struct {
		Results []struct {
			Name  string  `json:"name"`
			Bytes int64   `json:"bytes"`
			MBps  float64 `json:"mb_per_s"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Results) != 4 {
		t.Fatalf("%d results, want 4:\n%s", len(res.Results), out)
	}
	for _, r := range res.Results {
		if r.Bytes != 4<<20 || r.MBps <= 0 {
			t.Errorf("%s: %d bytes at %.0f MB/s", r.Name, r.Bytes, r.MBps)
		}
	}
}
