package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"

	"github.com/shouldersnet/shoulders/ledger/store"
)

// ErrNotFound is returned (wrapped, naming what was looked for) by the datanet queries.
var ErrNotFound = errors.New("state: not found")

// MaxQueryLimit bounds what one query returns.
const MaxQueryLimit = 10_000

// The datanet queries read committed state only, like Account; they are safe from any goroutine.

// Datanet returns the named datanet.
func (a *App) Datanet(name string) (*Datanet, error) {
	v, err := a.store.AppGet(datanetKey(name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: datanet %q", ErrNotFound, name)
	case err != nil:
		return nil, fmt.Errorf("%w: datanet %q: %w", ErrStore, name, err)
	}
	return decodeDatanet(name, v)
}

// Datanets returns up to limit datanets in name order, starting after the name after ("" from the start).
func (a *App) Datanets(after string, limit int) ([]*Datanet, error) {
	limit = clampLimit(limit)
	lower := datanetKey(after)
	if after != "" {
		lower = append(lower, 0)
	}
	var out []*Datanet
	err := a.store.AppScan(lower, []byte{prefixDatanet + 1}, func(k, v []byte) (bool, error) {
		d, err := decodeDatanet(string(k[1:]), v)
		if err != nil {
			return false, err
		}
		out = append(out, d)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, wrapStore(err)
	}
	return out, nil
}

// Versions returns every version of a datanet, oldest first.
func (a *App) Versions(name string) ([]Version, error) {
	d, err := a.Datanet(name)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, d.Versions)
	err = a.store.AppScan(versionKey(name, 1), versionKey(name, math.MaxUint32), func(k, v []byte) (bool, error) {
		ver, err := decodeVersion(binary.BigEndian.Uint32(k[len(k)-4:]), v)
		if err != nil {
			return false, err
		}
		out = append(out, *ver)
		return true, nil
	})
	if err != nil {
		return nil, wrapStore(err)
	}
	return out, nil
}

// DatanetVersion returns version n of a datanet.
func (a *App) DatanetVersion(name string, n uint32) (Version, error) {
	if _, err := a.Datanet(name); err != nil {
		return Version{}, err
	}
	v, err := a.store.AppGet(versionKey(name, n))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Version{}, fmt.Errorf("%w: datanet %q has no version %d", ErrNotFound, name, n)
	case err != nil:
		return Version{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	ver, err := decodeVersion(n, v)
	if err != nil {
		return Version{}, err
	}
	return *ver, nil
}

// Record returns one record of a datanet by its CID.
func (a *App) Record(name string, c cid.Cid) (*Record, error) {
	if _, err := a.Datanet(name); err != nil {
		return nil, err
	}
	return a.record(name, c.Bytes())
}

func (a *App) record(name string, c []byte) (*Record, error) {
	v, err := a.store.AppGet(recordKey(name, c))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: datanet %q has no record %s", ErrNotFound, name, cidString(c))
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return decodeRecord(c, v)
}

// RecordQuery selects records. With Version set, the records of that version in approval order (its
// record list); otherwise every record in contribution order, optionally only those with Status.
type RecordQuery struct {
	Version uint32
	Status  RecordStatus // 0: any
	After   uint64       // skip records before this seq (contribution order) or position (a version's list)
	Limit   int          // default and maximum MaxQueryLimit
}

// Records returns a datanet's records as q selects them.
func (a *App) Records(name string, q RecordQuery) ([]Record, error) {
	d, err := a.Datanet(name)
	if err != nil {
		return nil, err
	}
	limit := clampLimit(q.Limit)
	var out []Record
	if q.Version > 0 {
		ver, err := a.DatanetVersion(name, q.Version)
		if err != nil {
			return nil, err
		}
		if q.After >= uint64(ver.Records) {
			return []Record{}, nil
		}
		err = a.store.AppScan(approvedKey(name, uint32(q.After)), approvedKey(name, ver.Records), func(_, c []byte) (bool, error) {
			r, err := a.record(name, c)
			if err != nil {
				return false, err
			}
			out = append(out, *r)
			return len(out) < limit, nil
		})
		return nonNilRecords(out), wrapStore(err)
	}
	err = a.store.AppScan(contributionKey(name, q.After), contributionKey(name, d.Contributed), func(_, c []byte) (bool, error) {
		r, err := a.record(name, c)
		if err != nil {
			return false, err
		}
		if q.Status == 0 || r.Status == q.Status {
			out = append(out, *r)
		}
		return len(out) < limit, nil
	})
	return nonNilRecords(out), wrapStore(err)
}

func nonNilRecords(r []Record) []Record {
	if r == nil {
		return []Record{}
	}
	return r
}

func clampLimit(n int) int {
	if n <= 0 || n > MaxQueryLimit {
		return MaxQueryLimit
	}
	return n
}

func wrapStore(err error) error {
	if err == nil || errors.Is(err, ErrStore) || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStore, err)
}
