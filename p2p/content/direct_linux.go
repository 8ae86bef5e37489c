//go:build linux

package content

import (
	"os"
	"syscall"
)

// createDirect creates (or truncates) the file at path for writing with O_DIRECT: writes go from the
// caller's buffer to the device, not through the page cache. Buffers and lengths must be aligned to
// directAlign.
func createDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_DIRECT, 0o644)
}
