package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
)

// LedgerBenchConfig describes a ledger benchmark: a devnet of Validators validator processes on loopback,
// driven with signed transfers from Senders accounts.
type LedgerBenchConfig struct {
	Exe        string
	Dir        string
	Validators int           // default 4
	Duration   time.Duration // of each phase; default 30s
	// Rate is the offered load of the latency and fault phases, in transfers per second (default 1,000).
	Rate    int
	Senders int // default 64
	// Phases to run, in order: "saturation" (as fast as the chain commits), "rate" (Rate offered), "fault"
	// (Rate offered while one validator is killed with SIGKILL at a third of the phase and restarted at two
	// thirds). Default all three.
	Phases []string
	Log    io.Writer // progress; nil discards it
}

// LedgerPhase is what one phase measured.
type LedgerPhase struct {
	Phase           string  `json:"phase"`
	OfferedTPS      float64 `json:"offered_tps"` // 0: as fast as it commits
	Submitted       int     `json:"submitted"`
	Refused         int     `json:"refused"`
	SubmitErrors    int     `json:"submit_errors,omitempty"` // transfers whose submission failed (not refused)
	Committed       int     `json:"committed"`
	CommittedTPS    float64 `json:"committed_tps"`
	LatencyP50MS    float64 `json:"latency_p50_ms"` // submit → committed, as the benchmark saw it
	LatencyP99MS    float64 `json:"latency_p99_ms"`
	BlockP50MS      float64 `json:"block_interval_p50_ms"`
	BlockMaxMS      float64 `json:"block_interval_max_ms"`
	Blocks          int     `json:"blocks"`
	MaxBlockGapMS   float64 `json:"max_block_gap_ms,omitempty"` // fault phase: between the kill and the catch-up
	CatchUpMS       float64 `json:"catch_up_ms,omitempty"`      // fault phase: restart → back at the head
	KilledValidator string  `json:"killed_validator,omitempty"`
}

// BenchLedger starts the devnet, runs the phases and stops it.
func BenchLedger(ctx context.Context, cfg LedgerBenchConfig) ([]LedgerPhase, error) {
	if cfg.Validators == 0 {
		cfg.Validators = 4
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1000
	}
	if cfg.Senders == 0 {
		cfg.Senders = 64
	}
	if len(cfg.Phases) == 0 {
		cfg.Phases = []string{"saturation", "rate", "fault"}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	keys := make([]ed25519.PrivateKey, cfg.Senders)
	var accounts []state.Address
	for i := range keys {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		accounts = append(accounts, state.AddressFromKey(k))
	}
	net, err := Start(Config{Exe: cfg.Exe, Dir: cfg.Dir, Validators: cfg.Validators, Accounts: accounts, LogLevel: "warn"}, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer net.Stop()
	b := &ledgerBench{cfg: cfg, net: net, keys: keys, nonces: make([]uint64, len(keys))}
	for _, m := range net.Members {
		c, err := node.NewClient(m.API)
		if err != nil {
			return nil, err
		}
		b.clients = append(b.clients, c)
	}
	// Every node up and committing: a process that has not bound its API yet refuses the connection, so ask
	// again (every 100 ms, for at most a minute: a process that is starting has nothing to notify anyone with).
	up, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, c := range b.clients {
		for {
			_, err := c.Block(up, 2, 30*time.Second, true)
			if err == nil {
				break
			}
			if !errors.Is(err, node.ErrUnreachable) {
				return nil, fmt.Errorf("devnet did not start: %w", err)
			}
			select {
			case <-up.Done():
				return nil, fmt.Errorf("devnet did not start: %w", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	st, err := b.clients[0].LedgerStatus(ctx)
	if err != nil {
		return nil, err
	}
	b.chainID, b.fee = st.ChainID, uint64(st.MinFee)
	var out []LedgerPhase
	for _, phase := range cfg.Phases {
		var res LedgerPhase
		switch phase {
		case "saturation":
			res, err = b.run(ctx, phase, 0, false)
		case "rate":
			res, err = b.run(ctx, phase, cfg.Rate, false)
		case "fault":
			res, err = b.run(ctx, phase, cfg.Rate, true)
		default:
			err = fmt.Errorf("devnet: unknown benchmark phase %q (saturation, rate, fault)", phase)
		}
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	// What each node's consensus dropped, and why: where a round that failed without a fault went.
	for i, c := range b.clients {
		if d, err := c.Consensus(ctx); err == nil {
			fmt.Fprintf(b.cfg.Log, "bench ledger: %s: %d messages accepted, dropped %v, transport dropped %d\n",
				net.Members[i].Name, d.Accepted, d.Dropped, d.TransportDrop)
		}
	}
	return out, nil
}

type ledgerBench struct {
	cfg     LedgerBenchConfig
	net     *Net
	clients []*node.Client
	keys    []ed25519.PrivateKey
	nonces  []uint64
	chainID string
	fee     uint64
}

// signed is one pre-signed transfer and when it was submitted.
type signed struct {
	raw    []byte
	hash   string
	sender int
}

// syncNonces sets each sender's next nonce from the node its transfers go to (committed nonce plus its
// transfers pending there), so a phase continues where the last one left off, whatever it got through.
func (b *ledgerBench) syncNonces(ctx context.Context, targets int) error {
	for s, k := range b.keys {
		acct, err := b.clients[s%targets].Account(ctx, state.AddressFromKey(k).String())
		if err != nil {
			return fmt.Errorf("bench ledger: sender %d's nonce: %w", s, err)
		}
		b.nonces[s] = acct.PendingNonce
	}
	return nil
}

// sign pre-signs n transfers, spread over the senders in turn (nonces continue from syncNonces), so
// that signing costs nothing during the measurement: a client signs on its own machine. Each sender's
// transfers go to one of the first targets validators, so its nonces arrive in order. It signs on every
// core (the nodes are idle meanwhile).
func (b *ledgerBench) sign(n, targets int) ([][]signed, error) {
	all := make([]signed, n)
	to := state.AddressFromKey(b.keys[0])
	nonces := slices.Clone(b.nonces) // after this batch
	for i := range n {
		nonces[i%len(b.keys)]++
	}
	var wg sync.WaitGroup
	var failed error
	var once sync.Once
	workers := max(1, runtime.NumCPU())
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				s := i % len(b.keys)
				nonce := b.nonces[s] + uint64(i/len(b.keys))
				raw, err := state.SignTransfer(b.keys[s], b.chainID, nonce, b.fee, to, 1)
				if err != nil {
					once.Do(func() { failed = err })
					return
				}
				all[i] = signed{raw: raw, hash: state.HashTx(raw).String(), sender: s}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	b.nonces = nonces
	perValidator := make([][]signed, targets)
	for _, t := range all {
		v := t.sender % targets
		perValidator[v] = append(perValidator[v], t)
	}
	return perValidator, nil
}

// saturationOffered bounds what the saturation phase pre-signs, in transfers per second of the phase: twice
// the target, so the figure it measures is the chain's, not this bound's.
const saturationOffered = 20_000

// run drives one phase. rate 0 keeps as many transfers in flight as the chain takes.
func (b *ledgerBench) run(ctx context.Context, phase string, rate int, fault bool) (LedgerPhase, error) {
	res := LedgerPhase{Phase: phase, OfferedTPS: float64(rate)}
	secs := b.cfg.Duration.Seconds()
	total := int(float64(rate) * secs)
	if rate == 0 {
		total = int(saturationOffered * secs) // more than the chain takes in the phase
	}
	// In the fault phase the load goes to the validators that stay up (the last one is killed).
	killed, targets := b.cfg.Validators-1, b.cfg.Validators
	if fault {
		targets--
	}
	if err := b.syncNonces(ctx, targets); err != nil {
		return res, err
	}
	fmt.Fprintf(b.cfg.Log, "bench ledger: %s: signing %d transfers…\n", phase, total)
	txs, err := b.sign(total, targets)
	if err != nil {
		return res, err
	}

	// The watcher follows committed blocks on a node that stays up, and notes when each transfer committed;
	// it closes drained once every submitter is done and everything submitted has committed.
	watchNode := 0
	start0, err := b.clients[watchNode].LedgerStatus(ctx)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	submitted := map[string]time.Time{}
	var latencies []time.Duration
	var blocks []node.BlockView // headers (without transactions), for the intervals and the longest gap
	committed := 0
	allSubmitted := false
	drained := make(chan struct{})
	phaseCtx, stop := context.WithCancel(ctx)
	defer stop()
	watchDone := make(chan error, 1)
	go func() { // owned by run: ends with phaseCtx
		h := start0.Height + 1
		for phaseCtx.Err() == nil {
			blk, err := b.clients[watchNode].Block(phaseCtx, h, 5*time.Second, true)
			if err != nil {
				var apiErr *node.APIError
				if errors.As(err, &apiErr) && apiErr.Status == 404 {
					continue // not committed yet after the wait: ask again
				}
				if phaseCtx.Err() != nil {
					break
				}
				watchDone <- err
				return
			}
			now := time.Now()
			mu.Lock()
			header := blk
			header.TxHashes = nil
			blocks = append(blocks, header)
			for _, th := range blk.TxHashes {
				if at, ok := submitted[th]; ok {
					latencies = append(latencies, now.Sub(at))
					committed++
					delete(submitted, th)
				}
			}
			if allSubmitted && len(submitted) == 0 {
				allSubmitted = false // close once
				close(drained)
			}
			mu.Unlock()
			h++
		}
		watchDone <- nil
	}()

	// Submitters: one per validator, each sending its share every 10 ms (at the offered rate), or keeping a
	// window of transfers in flight (saturation).
	begin := time.Now()
	var wg sync.WaitGroup
	var subMu sync.Mutex
	stopSender := map[int]bool{} // senders whose transfer was refused: their later nonces would fail too
	for v := range targets {
		mine := txs[v]
		wg.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			next := 0
			for next < len(mine) && phaseCtx.Err() == nil {
				select {
				case <-phaseCtx.Done():
					return
				case <-tick.C:
				}
				elapsed := time.Since(begin)
				if elapsed > b.cfg.Duration {
					return
				}
				want := len(mine)
				if rate > 0 {
					want = min(len(mine), int(elapsed.Seconds()*float64(rate)/float64(targets)))
				} else {
					mu.Lock()
					inFlight := len(submitted)
					mu.Unlock()
					want = min(len(mine), next+max(0, (20000-inFlight)/targets))
				}
				if want <= next {
					continue
				}
				batch := mine[next:min(want, next+2000)]
				next += len(batch)
				// Senders with a refused or failed transfer send nothing more this phase: their later
				// nonces could not commit.
				var sent []signed
				var raws [][]byte
				subMu.Lock()
				for _, t := range batch {
					if !stopSender[t.sender] {
						sent, raws = append(sent, t), append(raws, t.raw)
					}
				}
				subMu.Unlock()
				if len(sent) == 0 {
					continue
				}
				now := time.Now()
				mu.Lock()
				for _, t := range sent {
					submitted[t.hash] = now
				}
				mu.Unlock()
				results, err := b.clients[v].Submit(phaseCtx, raws, false)
				if phaseCtx.Err() != nil {
					return
				}
				mu.Lock()
				subMu.Lock()
				if err != nil || len(results) != len(sent) {
					fmt.Fprintf(b.cfg.Log, "bench ledger: submitting %d transfers to %s: %v\n", len(sent), b.net.Members[v].Name, err)
					res.SubmitErrors += len(sent)
					for _, t := range sent {
						delete(submitted, t.hash)
						stopSender[t.sender] = true
					}
				} else {
					for i, r := range results {
						if r.Status == "refused" {
							res.Refused++
							delete(submitted, sent[i].hash)
							stopSender[sent[i].sender] = true
						} else {
							res.Submitted++
						}
					}
				}
				subMu.Unlock()
				mu.Unlock()
			}
		})
	}

	if fault {
		res.KilledValidator = b.net.Members[killed].Name
		b.fault(phaseCtx, &res, killed)
	}
	wg.Wait()
	// Let the last submitted transfers commit (bounded).
	mu.Lock()
	if len(submitted) == 0 {
		close(drained)
	} else {
		allSubmitted = true
	}
	mu.Unlock()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	elapsed := time.Since(begin)
	stop()
	if err := <-watchDone; err != nil {
		return res, err
	}

	mu.Lock()
	defer mu.Unlock()
	res.Committed = committed
	res.CommittedTPS = float64(committed) / elapsed.Seconds()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		res.LatencyP50MS = ms(latencies[n/2])
		res.LatencyP99MS = ms(latencies[min(n-1, n*99/100)])
	}
	var gaps []time.Duration
	longest := 0 // index in blocks of the block after the longest gap
	for i := 1; i < len(blocks); i++ {
		gaps = append(gaps, blocks[i].Time.Sub(blocks[i-1].Time))
		if longest == 0 || gaps[i-1] > gaps[longest-1] {
			longest = i
		}
	}
	if longest > 0 {
		lb := blocks[longest]
		fmt.Fprintf(b.cfg.Log, "bench ledger: %s: longest gap %.0f ms, before height %d (decided in round %d), %.1fs into the phase\n",
			phase, ms(gaps[longest-1]), lb.Height, lb.Round, lb.Time.Sub(begin).Seconds())
	}
	res.Blocks = len(blocks)
	slices.Sort(gaps)
	if n := len(gaps); n > 0 {
		res.BlockP50MS = ms(gaps[n/2])
		res.BlockMaxMS = ms(gaps[n-1])
	}
	if fault {
		res.MaxBlockGapMS = res.BlockMaxMS
	}
	fmt.Fprintf(b.cfg.Log, "bench ledger: %s: %d committed in %.1fs\n", phase, committed, elapsed.Seconds())
	return res, nil
}

// fault kills validator i a third into the phase, restarts it at two thirds, and measures how long it takes
// to be back at the head of the chain.
func (b *ledgerBench) fault(ctx context.Context, res *LedgerPhase, i int) {
	third := b.cfg.Duration / 3
	select {
	case <-ctx.Done():
		return
	case <-time.After(third):
	}
	fmt.Fprintf(b.cfg.Log, "bench ledger: killing %s (SIGKILL)\n", b.net.Members[i].Name)
	if err := b.net.Kill(i); err != nil {
		fmt.Fprintf(b.cfg.Log, "bench ledger: kill: %v\n", err)
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(third):
	}
	fmt.Fprintf(b.cfg.Log, "bench ledger: restarting %s\n", b.net.Members[i].Name)
	restarted := time.Now()
	if err := b.net.Restart(i); err != nil {
		fmt.Fprintf(b.cfg.Log, "bench ledger: restart: %v\n", err)
		return
	}
	// Back at the head: its height reaches what the watched node had when it answered. The restarted
	// process cannot notify this one, so ask it every 20 ms (a measurement, not a test), for at most a minute.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		head, err1 := b.clients[0].LedgerStatus(ctx)
		mine, err2 := b.clients[i].LedgerStatus(ctx)
		if err1 == nil && err2 == nil && mine.Height >= head.Height {
			res.CatchUpMS = ms(time.Since(restarted))
			fmt.Fprintf(b.cfg.Log, "bench ledger: %s is back at height %d after %.0f ms\n", b.net.Members[i].Name, mine.Height, res.CatchUpMS)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(b.cfg.Log, "bench ledger: %s did not catch up within a minute of its restart\n", b.net.Members[i].Name)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
