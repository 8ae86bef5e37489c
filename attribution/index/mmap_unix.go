//go:build unix

package index

import (
	"os"
	"syscall"
)

// mmapFile maps size bytes of f read-only. The mapping outlives f.
func mmapFile(f *os.File, size int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmap(b []byte) error { return syscall.Munmap(b) }
