//go:build !linux

package content

import (
	"errors"
	"os"
)

// createDirect is not available here: block files are written through the page cache.
func createDirect(string) (*os.File, error) { return nil, errors.ErrUnsupported }
