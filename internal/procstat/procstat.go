// Package procstat reads what this process has used so far, for benchmarks that print a figure next to
// a baseline: CPU time from getrusage(2), memory from /proc/self/status. Both are whole-process figures,
// so a benchmark reads them before and after the part it measures, with nothing else running.
package procstat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the CPU time (user + system) of the whole process so far, or 0 where getrusage fails.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// StatusKB reads a field of /proc/self/status (VmRSS, VmHWM, ...) in KiB, or 0 where there is no /proc
// or no such field.
func StatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}
