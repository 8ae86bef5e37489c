package content

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Fetch makes blob c local and verified, fetching what is missing from providers found through the DHT, and
// returns its size. See FetchFrom.
func (s *Service) Fetch(ctx context.Context, c cid.Cid, progress func(done, total int64)) (int64, error) {
	return s.FetchFrom(ctx, c, nil, progress)
}

// FetchFrom makes blob c local and verified and returns its size. It asks hints (peers thought to have it)
// and the providers the DHT names, up to Config.MaxProviders at once: first for the root block, then (for a
// manifest) for every chunk not already in the store, each provider keeping Config.Window blocks requested
// and pulling the next missing chunk when one arrives. Every block is verified against its CID before it
// is stored; a provider that sends a wrong block is dropped for this fetch, as is one that fails, and its
// chunks go to the others. On success the blob is pinned and queued to be provided. progress, when set, is
// called with the bytes of the blob that are local and its size, one call at a time, after each chunk.
//
// An error wrapping ErrNotFound means no provider was found, or none had the blob; otherwise the error says
// what is still missing and what became of each provider tried. Chunks fetched before an error stay in the
// store, so a later fetch resumes.
func (s *Service) FetchFrom(ctx context.Context, c cid.Cid, hints []peer.AddrInfo, progress func(done, total int64)) (int64, error) {
	if err := checkCID(c); err != nil {
		return 0, err
	}
	if ok, err := s.store.Has(c); err != nil {
		return 0, err
	} else if ok {
		return s.finish(c, progress)
	}
	f := &fetch{s: s, root: c, progress: progress, hints: len(hints)}
	f.mu.changed = make(chan struct{})
	f.mu.discovering = true
	ctx, cancel := context.WithCancel(ctx)
	discovered := make(chan struct{})
	// Owned by this call: it ends when the lookup does or when ctx is cancelled, which the defer does
	// before waiting for it.
	go func() {
		defer close(discovered)
		f.discover(ctx, hints)
	}()
	defer func() {
		cancel()
		<-discovered
	}()

	if has, err := s.store.HasBlock(c); err != nil {
		return 0, err
	} else if !has {
		if err := f.phase(ctx, []want{{c: c, size: -1}}); err != nil {
			return 0, err
		}
	}
	if IsManifest(c) {
		m, err := s.store.manifest(c)
		if err != nil {
			return 0, err
		}
		missing, err := s.store.missing(m)
		if err != nil {
			return 0, err
		}
		wants := make([]want, len(missing))
		var missingBytes int64
		for i, idx := range missing {
			wants[i] = want{c: m.Chunks[idx], size: m.chunkLen(idx)}
			missingBytes += int64(wants[i].size)
		}
		f.start(m.Size, m.Size-missingBytes)
		if err := f.phase(ctx, wants); err != nil {
			return 0, err
		}
	}
	return s.finish(c, progress)
}

// finish pins a blob that is now whole, queues it to be provided and returns its size.
func (s *Service) finish(c cid.Cid, progress func(done, total int64)) (int64, error) {
	size, err := s.store.Size(c)
	if err != nil {
		return 0, err
	}
	if err := s.store.Pin(c); err != nil {
		return 0, err
	}
	s.queueProvide(c)
	if progress != nil {
		progress(size, size)
	}
	return size, nil
}

// fetch is the state of one FetchFrom call: the providers it knows and the blocks of its current phase.
type fetch struct {
	s        *Service
	root     cid.Cid
	hints    int
	progress func(done, total int64)
	progMu   sync.Mutex // serializes progress calls

	mu struct {
		sync.Mutex
		provs       []*provider // in the order found; a provider's index is its bit in want.lacks
		discovering bool
		changed     chan struct{} // closed and replaced at every change
		fatal       error         // ends the fetch: the blob itself is bad
		// The current phase.
		wants     []want
		cursor    int // no want below it is queued
		remaining int
		done      int64 // bytes of the blob local
		total     int64
	}
}

type provider struct {
	info     peer.AddrInfo
	bit      uint64
	dropped  error // why it is out of this fetch; nil while usable
	running  bool  // a worker runs for it in this phase
	finished bool  // its worker for this phase ended: it lacks every block that remains
	blocks   int   // blocks it delivered
	lacked   int   // blocks it said it does not have
}

type wantState uint8

const (
	queued wantState = iota
	taken
	got
)

type want struct {
	c     cid.Cid
	size  int // the length the block must have; -1 for a root, which may be any size its kind allows
	state wantState
	lacks uint64 // providers that said they do not have it
}

func (f *fetch) changedLocked() {
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
}

func (f *fetch) start(total, done int64) {
	f.mu.Lock()
	f.mu.total, f.mu.done = total, done
	f.mu.Unlock()
	f.report()
}

func (f *fetch) report() {
	if f.progress == nil {
		return
	}
	f.progMu.Lock()
	defer f.progMu.Unlock()
	f.mu.Lock()
	done, total := f.mu.done, f.mu.total
	f.mu.Unlock()
	if total > 0 {
		f.progress(done, total)
	}
}

// discover adds the hint peers, then the providers the DHT finds, to the fetch.
func (f *fetch) discover(ctx context.Context, hints []peer.AddrInfo) {
	defer func() {
		f.mu.Lock()
		f.mu.discovering = false
		f.changedLocked()
		f.mu.Unlock()
	}()
	for _, h := range hints {
		f.addProvider(h)
	}
	if f.s.router == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.FindTimeout)
	defer cancel()
	for ai := range f.s.router.FindProvidersAsync(ctx, f.root, maxProviders) {
		f.addProvider(ai)
	}
}

func (f *fetch) addProvider(ai peer.AddrInfo) {
	if ai.ID == f.s.h.ID() || ai.ID == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.mu.provs {
		if p.info.ID == ai.ID {
			p.info.Addrs = append(p.info.Addrs, ai.Addrs...)
			return
		}
	}
	if len(f.mu.provs) == maxProviders {
		return
	}
	f.mu.provs = append(f.mu.provs, &provider{info: ai, bit: 1 << len(f.mu.provs)})
	f.changedLocked()
}

// phase fetches wants from the providers, starting a worker for each usable provider (up to MaxProviders at
// once) as they are found, until every want is stored, the fetch fails, or ctx ends. The workers are owned
// by phase: it cancels and waits for them before it returns.
func (f *fetch) phase(ctx context.Context, wants []want) error {
	if len(wants) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	f.mu.Lock()
	f.mu.wants, f.mu.cursor, f.mu.remaining = wants, 0, len(wants)
	for _, p := range f.mu.provs {
		p.finished = false
	}
	f.mu.Unlock()
	for {
		f.mu.Lock()
		if f.mu.fatal != nil {
			err := f.mu.fatal
			f.mu.Unlock()
			return err
		}
		if f.mu.remaining == 0 {
			f.mu.Unlock()
			return nil
		}
		running := 0
		for _, p := range f.mu.provs {
			if p.running {
				running++
			}
		}
		for _, p := range f.mu.provs {
			if running >= f.s.cfg.MaxProviders {
				break
			}
			if p.dropped != nil || p.running || p.finished {
				continue
			}
			p.running = true
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f.work(ctx, p)
				f.workerDone(ctx, p, err)
			}()
		}
		if running == 0 && !f.mu.discovering {
			err := f.failureLocked()
			f.mu.Unlock()
			return err
		}
		ch := f.mu.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("content: fetching %s: %w", f.root, ctx.Err())
		}
	}
}

func (f *fetch) workerDone(ctx context.Context, p *provider, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.running = false
	switch {
	case ctx.Err() != nil:
	case err != nil:
		p.dropped = err
		f.s.log.Info("content: dropped a provider for this fetch", "cid", f.root, "peer", p.info.ID, "reason", err)
	default:
		p.finished = true
	}
	f.changedLocked()
}

// failureLocked describes why the phase cannot finish: every provider found is dropped or lacks what remains.
func (f *fetch) failureLocked() error {
	if len(f.mu.provs) == 0 {
		return fmt.Errorf("%w: no provider of %s found (asked the DHT and %d hint peers)", ErrNotFound, f.root, f.hints)
	}
	var first cid.Cid
	for _, w := range f.mu.wants {
		if w.state != got {
			first = w.c
			break
		}
	}
	var tried []string
	nobodyHas := true
	for _, p := range f.mu.provs {
		switch {
		case p.dropped != nil:
			tried = append(tried, fmt.Sprintf("%s (dropped: %v)", p.info.ID, p.dropped))
			nobodyHas = false
		default:
			tried = append(tried, fmt.Sprintf("%s (has none of the blocks still missing; delivered %d)", p.info.ID, p.blocks))
		}
	}
	what := fmt.Sprintf("%d of %d blocks of %s still missing (first %s)", f.mu.remaining, len(f.mu.wants), f.root, first)
	if f.mu.wants[0].c == f.root {
		what = fmt.Sprintf("the block of %s is missing", f.root)
	}
	if nobodyHas {
		return fmt.Errorf("%w: %s; no provider has it; providers tried: %s", ErrNotFound, what, strings.Join(tried, "; "))
	}
	return fmt.Errorf("content: fetching %s: %s; providers tried: %s", f.root, what, strings.Join(tried, "; "))
}

// take hands p up to n queued wants p has not said it lacks. done says the phase is over; lacksAll that p
// lacks every want not yet stored (computed only when idle is set and nothing was taken).
func (f *fetch) take(p *provider, n int, idle bool) (out []int, done, lacksAll bool, changed <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.remaining == 0 || f.mu.fatal != nil {
		return nil, true, false, nil
	}
	ws := f.mu.wants
	for f.mu.cursor < len(ws) && ws[f.mu.cursor].state != queued {
		f.mu.cursor++
	}
	for i := f.mu.cursor; i < len(ws) && len(out) < n; i++ {
		if ws[i].state == queued && ws[i].lacks&p.bit == 0 {
			ws[i].state = taken
			out = append(out, i)
		}
	}
	if len(out) == 0 && idle {
		lacksAll = true
		for i := range ws {
			if ws[i].state != got && ws[i].lacks&p.bit == 0 {
				lacksAll = false
				break
			}
		}
	}
	return out, false, lacksAll, f.mu.changed
}

// giveBack returns wants p took and will not deliver to the queue.
func (f *fetch) giveBack(idxs []int) {
	if len(idxs) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range idxs {
		if f.mu.wants[i].state == taken {
			f.mu.wants[i].state = queued
			f.mu.cursor = min(f.mu.cursor, i)
		}
	}
	f.changedLocked()
}

func (f *fetch) lack(p *provider, i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &f.mu.wants[i]
	w.lacks |= p.bit
	w.state = queued
	f.mu.cursor = min(f.mu.cursor, i)
	p.lacked++
	f.changedLocked()
}

func (f *fetch) got(p *provider, i, n int) {
	f.mu.Lock()
	f.mu.wants[i].state = got
	f.mu.remaining--
	f.mu.done += int64(n)
	if f.mu.wants[i].size < 0 { // a root block
		f.mu.total = max(f.mu.total, int64(n))
	}
	p.blocks++
	c := f.mu.wants[i].c
	f.changedLocked()
	f.mu.Unlock()
	if !IsManifest(c) {
		f.report()
	}
}

func (f *fetch) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.fatal == nil {
		f.mu.fatal = err
	}
	f.changedLocked()
}

// errBadBlock is a provider sending bytes that do not match the CID asked for.
type errBadBlock struct{ err error }

func (e errBadBlock) Error() string { return "sent a bad block: " + e.err.Error() }
func (e errBadBlock) Unwrap() error { return e.err }

// work fetches wants from p on one stream until the phase is over, p lacks everything that remains, or p
// fails; the error says why p should be dropped. Wants it took and did not deliver go back to the queue.
func (f *fetch) work(ctx context.Context, p *provider) (err error) {
	s := f.s
	if s.h.Network().Connectedness(p.info.ID) != network.Connected {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err := s.h.Connect(dctx, p.info)
		cancel()
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
	}
	release, err := s.acquireStream(ctx, p.info.ID)
	if err != nil {
		return err
	}
	defer release()
	st, err := s.h.NewStream(ctx, p.info.ID, Protocol)
	if err != nil {
		return fmt.Errorf("opening a stream: %w", err)
	}
	// Reset the stream when the phase ends, so that a read waiting on it returns at once.
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	defer func() {
		if err != nil {
			st.Reset()
		}
	}()
	var inflight []int
	defer func() { f.giveBack(inflight) }()
	// Blocks go to a storer, which verifies and writes them while this loop reads the next ones: reading
	// at once keeps the stream's flow-control window open, so p sends while this node hashes and writes.
	// A block counts as fetched once the storer has committed it. What is verified is stored even when
	// p fails afterwards; a bad block makes the storer reset the stream, and p is dropped for it.
	toStore := make(chan storeJob, storeQueue)
	var storers sync.WaitGroup
	bad := make([]error, storeWorkers)
	for i := range storeWorkers {
		// Owned by this call: each ends when toStore is closed and drained, which the defer does and waits for.
		storers.Go(func() { bad[i] = f.store(p, toStore, st) })
	}
	defer func() {
		close(toStore)
		storers.Wait()
		for _, b := range bad {
			if b != nil {
				err = b // why p is dropped
				break
			}
		}
	}()
	br := bufio.NewReaderSize(st, 64<<10)
	bw := bufio.NewWriterSize(st, 4<<10)
	for {
		idxs, done, lacksAll, changed := f.take(p, s.cfg.Window-len(inflight), len(inflight) == 0)
		if done || lacksAll {
			st.Close()
			return nil
		}
		if len(idxs) > 0 {
			cids := make([][]byte, len(idxs))
			f.mu.Lock()
			for i, idx := range idxs {
				cids[i] = f.mu.wants[idx].c.Bytes()
			}
			f.mu.Unlock()
			inflight = append(inflight, idxs...)
			st.SetWriteDeadline(time.Now().Add(s.cfg.BlockTimeout))
			if err := writeRequest(bw, cids); err != nil {
				return fmt.Errorf("sending a request: %w", err)
			}
		}
		if len(inflight) == 0 {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		st.SetReadDeadline(time.Now().Add(s.cfg.BlockTimeout))
		bufp := s.frameBufs.Get().(*[]byte)
		msg, err := readFrame(br, maxResponseSize, *bufp)
		if err != nil {
			s.frameBufs.Put(bufp)
			return fmt.Errorf("reading a block: %w", err)
		}
		job, missing, err := f.check(p, inflight[0], msg)
		if err != nil || missing {
			s.frameBufs.Put(bufp)
		}
		if err != nil {
			return err
		}
		inflight = inflight[1:]
		if !missing {
			job.buf = bufp
			toStore <- job
		}
	}
}

// storeWorkers verify and store each provider's blocks, two at once so that one hashes while the other
// waits for its write; storeQueue is how many blocks a provider's worker may read ahead of them.
const (
	storeWorkers = 2
	storeQueue   = 4
)

// storeJob is a block on its way to be verified and stored, in buf (returned to Service.frameBufs after).
type storeJob struct {
	idx  int
	c    cid.Cid
	size int // the length the manifest gives it, or -1
	data []byte
	buf  *[]byte
}

// check decodes msg, p's answer for want idx (the next it owes). It returns the block, or missing when p
// said it lacks it, or an error when p is to be dropped.
func (f *fetch) check(p *provider, idx int, msg []byte) (job storeJob, missing bool, err error) {
	resp, err := decodeResponse(msg)
	if err != nil {
		return storeJob{}, false, err
	}
	f.mu.Lock()
	w := f.mu.wants[idx]
	f.mu.Unlock()
	if !bytes.Equal(resp.cid, w.c.Bytes()) {
		return storeJob{}, false, fmt.Errorf("answered with a block for %x when %s was next", resp.cid, w.c)
	}
	if resp.missing {
		f.lack(p, idx)
		return storeJob{}, true, nil
	}
	return storeJob{idx: idx, c: w.c, size: w.size, data: resp.data}, false, nil
}

// accept verifies block j and checks that this node takes it. It returns errBadBlock when the bytes do
// not match the CID (the provider's fault), and fails the fetch when they match but the block is not one
// this node accepts (the fault of the CID, or of the manifest that listed it).
func (f *fetch) accept(j storeJob) (ok bool, bad error) {
	if err := verify(j.c, j.data); err != nil {
		f.s.badBlocks.Add(1)
		return false, errBadBlock{err}
	}
	if j.size >= 0 && len(j.data) != j.size {
		f.fail(fmt.Errorf("content: %s: chunk %s is %d bytes, the manifest says %d", f.root, j.c, len(j.data), j.size))
		return false, nil
	}
	err := checkSize(j.c, j.data)
	if err == nil {
		err = checkManifest(j.c, j.data)
	}
	if err != nil {
		f.fail(fmt.Errorf("content: %s names a block this node refuses: %w", f.root, err))
		return false, nil
	}
	return true, nil
}

// store verifies and writes the blocks p's worker read, committing them in batches of commitBytes and
// whenever it would wait for more, and marks each fetched once committed. A block that does not match its
// CID goes back to the queue, and store resets st, so that the worker stops, and returns why p is to be
// dropped. After a store error it fails the fetch; what is not stored goes back to the queue.
func (f *fetch) store(p *provider, in <-chan storeJob, st network.Stream) (bad error) {
	s := f.s
	batch := s.store.newBlockBatch()
	defer batch.close()
	type committing struct {
		idx int
		c   cid.Cid
		n   int
	}
	var pending []committing
	var failed bool
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := batch.commit(); err != nil {
			failed = true
			f.fail(err)
			idxs := make([]int, len(pending))
			for i, j := range pending {
				idxs[i] = j.idx
			}
			f.giveBack(idxs)
		} else {
			for _, j := range pending {
				s.blocksFetched.Add(1)
				s.bytesFetched.Add(int64(j.n))
				f.got(p, j.idx, j.n)
				if s.cfg.afterBlock != nil {
					s.cfg.afterBlock(p.info.ID, j.c)
				}
			}
		}
		pending = pending[:0]
	}
	for {
		// Commit before waiting: with two storers, an empty queue now says nothing about whether the
		// other storer took the last block, and a block left uncommitted would never count as fetched.
		var j storeJob
		var more bool
		select {
		case j, more = <-in:
		default:
			flush()
			j, more = <-in
		}
		if !more {
			break
		}
		ok := !failed
		if ok {
			var err error
			if ok, err = f.accept(j); err != nil && bad == nil {
				bad = err
				st.Reset()
			}
		}
		if ok {
			if err := batch.add(j.c, j.data); err != nil {
				ok, failed = false, true
				f.fail(err)
			}
		}
		if ok {
			pending = append(pending, committing{idx: j.idx, c: j.c, n: len(j.data)})
		} else {
			f.giveBack([]int{j.idx})
		}
		s.frameBufs.Put(j.buf)
		if batch.bytes >= commitBytes {
			flush()
		}
	}
	flush()
	return bad
}
