//go:build !unix

package index

import (
	"io"
	"os"
)

// mmapFile reads the file where mmap is not available: same contract, more memory.
func mmapFile(f *os.File, size int64) ([]byte, error) {
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	return b, err
}

func munmap([]byte) error { return nil }
