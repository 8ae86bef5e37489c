// Package devnet starts a whole Shoulders network on loopback in one command: it creates a node home per node
// under one directory (the first node is everyone's bootstrap peer) and a genesis that makes the first
// Validators nodes the chain's validators and funds every node's account, runs each node as a separate
// process of the same binary (`shoulders node`), prints where each node's API is, follows them with a
// one-line status as they find each other and commit blocks, and stops them all when its context ends.
//
// Decisions where the design is silent:
//   - Nodes are processes, not goroutines, so a devnet behaves like a real network (each node has its own
//     store, key and crashes alone). Each child dies with the supervisor (Linux parent-death signal) and runs
//     in its own process group, so Ctrl-C reaches only the supervisor, which stops the nodes in order.
//   - Ports are picked free at creation (or from --base-port) and written into each node's config, so a
//     devnet directory can be started again later with the same identities and addresses.
//   - Node homes that already exist in the directory are reused as they are, and so is the genesis: a devnet
//     started again on the same directory continues its chain.
//   - Every account the genesis funds starts with FundEach units; the chain ID is "shoulders-devnet".
package devnet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/ledger"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p/announce"
)

// Network is the name every devnet node's config carries.
const Network = "devnet"

// ChainID is the devnet's chain ID.
const ChainID = "shoulders-devnet"

// FundEach is what the genesis gives every funded account.
const FundEach = 1_000_000_000_000

// Config says what devnet to run.
type Config struct {
	// Exe is the shoulders binary to run each node with.
	Exe string
	// Dir holds one home per node (node0, node1, ...).
	Dir string
	// Validators is how many nodes vote (the first ones); Nodes is how many more run as observers.
	Validators int
	Nodes      int
	// Accounts are funded at genesis beside the nodes' own (the ledger benchmark's senders, say).
	Accounts []state.Address
	// BasePort, when not 0, puts node i's libp2p on port BasePort+i (TCP and QUIC) and its API on
	// BasePort+100+i; 0 picks free ports.
	BasePort int
	// LogLevel is passed to every node (default "info").
	LogLevel string
	// StatusEvery is how often the status line is refreshed (default 1s).
	StatusEvery time.Duration
}

// Member is one node of a devnet.
type Member struct {
	Name      string
	Home      string
	PeerID    string
	API       string // http://127.0.0.1:PORT
	Log       string
	Validator bool
}

// Prepare creates (or reuses) the node homes and the genesis, and returns the members. It starts nothing.
func Prepare(cfg Config) ([]Member, error) {
	if cfg.Validators < 1 || cfg.Validators > 100 {
		return nil, fmt.Errorf("devnet: --validators %d: want 1 to 100", cfg.Validators)
	}
	if cfg.Nodes < 0 || cfg.Validators+cfg.Nodes > 100 {
		return nil, fmt.Errorf("devnet: --nodes %d: want 0 to %d beside %d validators", cfg.Nodes, 100-cfg.Validators, cfg.Validators)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	var members []Member
	var bootstrap []string
	ports := newPortPicker(cfg.BasePort)
	defer ports.release()
	for i := range cfg.Validators + cfg.Nodes {
		m := Member{Name: fmt.Sprintf("node%d", i), Home: filepath.Join(cfg.Dir, fmt.Sprintf("node%d", i)), Validator: i < cfg.Validators}
		m.Log = filepath.Join(m.Home, "node.log")
		if _, err := os.Stat(filepath.Join(m.Home, node.KeyFile)); errors.Is(err, os.ErrNotExist) {
			p2pPort, apiPort, err := ports.pick(i)
			if err != nil {
				return nil, err
			}
			_, err = node.Init(node.InitOptions{
				Home:      m.Home,
				Network:   Network,
				Listen:    []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2pPort), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p2pPort)},
				API:       fmt.Sprintf("127.0.0.1:%d", apiPort),
				Bootstrap: bootstrap,
				Roles:     roles(m.Validator),
			})
			if err != nil {
				return nil, fmt.Errorf("devnet: %s: %w", m.Name, err)
			}
		}
		nodeCfg, err := node.LoadConfig(m.Home)
		if err != nil {
			return nil, fmt.Errorf("devnet: %s: %w", m.Name, err)
		}
		key, err := node.LoadKey(filepath.Join(m.Home, node.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("devnet: %s: %w", m.Name, err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("devnet: %s: %w", m.Name, err)
		}
		m.PeerID = id.String()
		m.API = "http://" + nodeCfg.API
		if i == 0 {
			bootstrap = []string{nodeCfg.Config.Listen[0] + "/p2p/" + m.PeerID}
		}
		members = append(members, m)
	}
	if err := writeGenesis(cfg, members); err != nil {
		return nil, err
	}
	return members, nil
}

func roles(validator bool) []string {
	if validator {
		return []string{announce.RoleWorker, announce.RoleValidator}
	}
	return []string{announce.RoleWorker}
}

// writeGenesis writes the devnet's genesis into every home that lacks one: the first node's if it has one,
// else a new one.
func writeGenesis(cfg Config, members []Member) error {
	path := filepath.Join(members[0].Home, ledger.GenesisFile)
	g, err := ledger.ReadGenesis(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("devnet: %w", err)
		}
		app := state.Genesis{ChainID: ChainID, Params: state.DefaultParams()}
		funded := map[state.Address]bool{}
		fund := func(a state.Address) {
			if !funded[a] {
				funded[a] = true
				app.Accounts = append(app.Accounts, state.GenesisAccount{Address: a, Balance: FundEach})
			}
		}
		g = &ledger.Genesis{ChainID: ChainID, Time: time.Now().UTC()}
		for _, m := range members {
			id, _ := peer.Decode(m.PeerID)
			addr, err := state.AddressOf(id)
			if err != nil {
				return fmt.Errorf("devnet: %s: %w", m.Name, err)
			}
			fund(addr)
			if m.Validator {
				g.Validators = append(g.Validators, ledger.GenesisValidator{Address: m.PeerID, Power: 10})
			}
		}
		for _, a := range cfg.Accounts {
			fund(a)
		}
		if g.App, err = json.Marshal(app); err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
	}
	for _, m := range members {
		p := filepath.Join(m.Home, ledger.GenesisFile)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			if err := g.Write(p); err != nil {
				return fmt.Errorf("devnet: %s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// portPicker hands out node i's libp2p and API ports: BasePort-based when set, else free ones. Free ports
// stay bound until release, so no port is handed out twice.
type portPicker struct {
	base int
	held []io.Closer
}

func newPortPicker(base int) *portPicker { return &portPicker{base: base} }

func (pp *portPicker) pick(i int) (p2pPort, apiPort int, err error) {
	if pp.base != 0 {
		return pp.base + i, pp.base + 100 + i, nil
	}
	if p2pPort, err = pp.free(); err != nil {
		return 0, 0, err
	}
	apiPort, err = pp.free()
	return p2pPort, apiPort, err
}

// free finds a port free for both TCP and UDP on 127.0.0.1 and keeps it bound until release.
func (pp *portPicker) free() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("devnet: finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			l.Close()
			continue
		}
		pp.held = append(pp.held, l, u)
		return port, nil
	}
	return 0, errors.New("devnet: no port free for both TCP and UDP")
}

func (pp *portPicker) release() {
	for _, c := range pp.held {
		c.Close()
	}
	pp.held = nil
}

// Net is a running devnet: its members and their processes. Tests and benchmarks use it to kill, pause and
// restart nodes; Run uses it for the CLI.
type Net struct {
	cfg     Config
	Members []Member
	out     io.Writer

	mu    sync.Mutex
	procs []*process
}

// Start prepares the devnet, starts every node and prints the members to out.
func Start(cfg Config, out io.Writer) (*Net, error) {
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.StatusEvery == 0 {
		cfg.StatusEvery = time.Second
	}
	members, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	n := &Net{cfg: cfg, Members: members, out: out}
	for _, m := range members {
		p, err := startNode(cfg, m)
		if err != nil {
			n.Stop()
			return nil, err
		}
		n.procs = append(n.procs, p)
	}
	fmt.Fprintf(out, "devnet: %d nodes on loopback (%d validators), network %q, chain %q, homes in %s\n",
		len(members), cfg.Validators, Network, ChainID, cfg.Dir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tPEER ID\tAPI\tLOG")
	for _, m := range members {
		role := "observer"
		if m.Validator {
			role = "validator"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, role, m.PeerID, m.API, m.Log)
	}
	tw.Flush()
	return n, nil
}

// Signal sends sig to node i's process.
func (n *Net) Signal(i int, sig syscall.Signal) error {
	n.mu.Lock()
	p := n.procs[i]
	n.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

// Kill kills node i with SIGKILL (no chance to clean up, as in a power cut of the process) and waits until
// it has exited.
func (n *Net) Kill(i int) error {
	n.mu.Lock()
	p := n.procs[i]
	n.mu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Restart starts node i again after it exited.
func (n *Net) Restart(i int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.procs[i].done:
	default:
		return fmt.Errorf("devnet: %s is still running", n.Members[i].Name)
	}
	p, err := startNode(n.cfg, n.Members[i])
	if err != nil {
		return err
	}
	n.procs[i] = p
	return nil
}

// Stop stops every node (SIGTERM, then SIGKILL after 10 s) and returns once all have exited.
func (n *Net) Stop() {
	n.mu.Lock()
	procs := append([]*process(nil), n.procs...)
	n.mu.Unlock()
	stopAll(procs, n.out)
}

// Run prepares the devnet, starts every node, and reports to out until ctx ends; then it stops the nodes
// and returns once all have exited.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	n, err := Start(cfg, out)
	if err != nil {
		return err
	}
	defer n.Stop()
	fmt.Fprintf(out, "Ctrl-C stops them all.\n")
	return watch(ctx, n.cfg, n.Members, n.procs, out)
}

type process struct {
	m    Member
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // set before done closes
	log  *os.File
}

func startNode(cfg Config, m Member) (*process, error) {
	log, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	cmd := exec.Command(cfg.Exe, "node", "--home", m.Home, "--log-level", cfg.LogLevel)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("devnet: starting %s: %w", m.Name, err)
	}
	p := &process{m: m, cmd: cmd, done: make(chan struct{}), log: log}
	// Owned by the process value: it ends when the child exits, which stopAll guarantees.
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

func stopAll(procs []*process, out io.Writer) {
	running := 0
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			running++
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	if running == 0 {
		return
	}
	fmt.Fprintf(out, "devnet: stopping %d nodes\n", running)
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline.C:
			// Past the deadline: kill every node still running, not only this one.
			for _, q := range procs {
				q.cmd.Process.Kill()
			}
			<-p.done
		}
	}
	for _, p := range procs {
		<-p.done
	}
	fmt.Fprintln(out, "devnet: stopped")
}

// watch prints a status line whenever it changes, says once when every node has found every other one, and
// reports nodes that exit on their own.
func watch(ctx context.Context, cfg Config, members []Member, procs []*process, out io.Writer) error {
	clients := make([]*node.Client, len(members))
	for i, m := range members {
		c, err := node.NewClient(m.API)
		if err != nil {
			return err
		}
		clients[i] = c
	}
	tick := time.NewTicker(cfg.StatusEvery)
	defer tick.Stop()
	last, announced := "", false
	exited := make([]bool, len(procs))
	for {
		for i, p := range procs {
			select {
			case <-p.done:
				if !exited[i] {
					exited[i] = true
					fmt.Fprintf(out, "devnet: %s exited (%v); last lines of %s:\n%s", p.m.Name, p.err, p.m.Log, tail(p.m.Log, 5))
				}
			default:
			}
		}
		if all(exited) {
			return errors.New("devnet: every node has exited")
		}
		peers, workers, heights := status(ctx, clients, exited)
		line := fmt.Sprintf("height %s  peers %s  workers %s", strings.Join(heights, " "), strings.Join(peers, " "), strings.Join(workers, " "))
		if line != last {
			fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if !announced && everyoneSeesEveryone(workers, len(members)) {
			announced = true
			first, last := members[0], members[len(members)-1]
			fmt.Fprintf(out, "devnet: all %d nodes found each other. Try:\n  shoulders ledger status --api %s\n  shoulders transfer %s 1000 --wait --home %s\n  shoulders ledger account %s --api %s\n  shoulders debug trace --follow --api %s\n",
				len(members), first.API, last.PeerID, first.Home, last.PeerID, first.API, last.API)
			fmt.Fprintf(out, "  shoulders datanet create poems --license CC-BY-4.0 --home %s\n  shoulders datanet contribute poems FILE... --home %s\n  shoulders datanet approve poems --all --home %s\n  shoulders catalog --kind datanet --api %s\n",
				first.Home, last.Home, first.Home, last.API)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func all(b []bool) bool {
	for _, x := range b {
		if !x {
			return false
		}
	}
	return true
}

// status asks every live node for its peer and worker counts and its chain height; "-" marks a node that
// did not answer, "x" one that exited.
func status(ctx context.Context, clients []*node.Client, exited []bool) (peers, workers, heights []string) {
	peers, workers, heights = make([]string, len(clients)), make([]string, len(clients)), make([]string, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		peers[i], workers[i], heights[i] = "-", "-", "-"
		if exited[i] {
			peers[i], workers[i], heights[i] = "x", "x", "x"
			continue
		}
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if ps, err := c.Peers(rctx); err == nil {
				peers[i] = fmt.Sprint(len(ps))
			}
			if ws, err := c.Catalog(rctx, "worker"); err == nil {
				workers[i] = fmt.Sprint(len(ws))
			}
			if s, err := c.LedgerStatus(rctx); err == nil {
				heights[i] = fmt.Sprint(s.Height)
			}
		})
	}
	wg.Wait()
	return peers, workers, heights
}

func everyoneSeesEveryone(workers []string, n int) bool {
	for _, w := range workers {
		if w != fmt.Sprint(n) {
			return false
		}
	}
	return true
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")\n"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
