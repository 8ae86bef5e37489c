package p2p

import (
	"context"
	"testing"
	"time"
)

// Every node ends up with every announcer's latest announcement, and no node's application gets one twice
// (no timing asserted here: figures belong to the benchmark).
func TestGossipBenchDeliversEverythingOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 16 hosts: skipped in -short mode")
	}
	res, err := BenchGossip(context.Background(), GossipBenchConfig{Nodes: 8, Messages: 40, Degree: 3, Spacing: 5 * time.Millisecond, Timeout: 30 * time.Second, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Latest != 1 || r.AppDuplicates != 0 || r.ReachP50 <= 0 || r.SendsPerDelivery <= 0 || r.CPUPerMessage <= 0 {
			t.Errorf("%+v", r)
		}
	}
}

// BenchmarkGossip reports the time for an announcement to reach all 20 nodes (p50 and p99) for plain
// gossipsub and for the announcement layer, b.N announcements each (at least 50).
func BenchmarkGossip(b *testing.B) {
	for _, v := range []struct {
		name string
		rig  func(context.Context, GossipBenchConfig, deliverFn) (rig, error)
	}{{"plain", newPlainRig}, {"shoulders", newShouldersRig}} {
		b.Run(v.name, func(b *testing.B) {
			cfg := GossipBenchConfig{Nodes: 20, Messages: max(b.N, 50), Seed: 1}
			cfg.defaults()
			run, err := runGossipBench(context.Background(), cfg, v.rig)
			if err != nil {
				b.Fatal(err)
			}
			r := run.result(v.name)
			b.ReportMetric(float64(r.ReachP50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.ReachP99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(r.SendsPerDelivery, "sends/delivery")
			b.ReportMetric(100*r.Delivered, "%delivered")
			b.ReportMetric(float64(r.CPUPerMessage.Microseconds())/1000, "cpu-ms/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}
