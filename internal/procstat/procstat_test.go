package procstat

import "testing"

// CPU time grows when the process works, and the resident set is a positive figure.
func TestCPUTimeAndStatus(t *testing.T) {
	before := CPUTime()
	x := uint64(1)
	for i := range 50_000_000 {
		x = x*6364136223846793005 + uint64(i)
	}
	if after := CPUTime(); after <= before {
		t.Errorf("CPU time went from %v to %v across 50M multiplications (x=%d)", before, after, x)
	}
	if rss := StatusKB("VmRSS"); rss <= 0 {
		t.Errorf("VmRSS = %d KiB", rss)
	}
	if v := StatusKB("NoSuchField"); v != 0 {
		t.Errorf("a missing field read as %d", v)
	}
}
