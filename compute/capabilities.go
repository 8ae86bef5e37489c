// Package compute owns jobs: their specs and state machines, the requester's side (find workers, ask for
// bids, accept, follow, verify) and the worker's side (bid, reserve, run, report). The job protocol and the
// executors are not built yet; what exists today is the capability probe a worker's offer reports: CPU
// cores, memory, NVIDIA GPUs and the executors this host could provide.
//
// Decisions where the design is silent:
//   - GPUs are found with `nvidia-smi --query-gpu`, not NVML through cgo, so the binary stays static and a
//     host without the NVIDIA driver needs nothing installed. No nvidia-smi on PATH means no GPUs, which is
//     a normal case; an nvidia-smi that fails (driver not loaded) is reported as an error beside an empty list.
//   - Executors: "builtin" (in-process) is always available; "docker" only when the Docker Engine API answers
//     on its socket. "exec" appears once an owner configures command templates (not built yet).
package compute

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// GPU is one NVIDIA GPU as nvidia-smi reports it.
type GPU struct {
	Index         uint32
	UUID          string
	Name          string
	MemoryMiB     uint64
	DriverVersion string
}

// Capabilities is what a worker can offer.
type Capabilities struct {
	CPUCores    uint32
	MemoryBytes uint64
	GPUs        []GPU
	Executors   []string
	// GPUError says why GPUs could not be listed when nvidia-smi exists but failed; empty otherwise.
	GPUError string
}

// ProbeConfig says where to look. Zero values take the defaults.
type ProbeConfig struct {
	NvidiaSMI    string // path or name of nvidia-smi; default "nvidia-smi" on PATH
	DockerSocket string // default /var/run/docker.sock, or $DOCKER_HOST when it is a unix:// address
}

// Probe measures this host. It takes at most a few seconds (each external check has a timeout).
func Probe(ctx context.Context, cfg ProbeConfig) Capabilities {
	c := Capabilities{CPUCores: uint32(runtime.NumCPU()), GPUs: []GPU{}, Executors: []string{"builtin"}}
	if mem, err := memTotal("/proc/meminfo"); err == nil {
		c.MemoryBytes = mem
	}
	gpus, err := DetectGPUs(ctx, cfg.NvidiaSMI)
	if err != nil {
		c.GPUError = err.Error()
	} else {
		c.GPUs = gpus
	}
	if dockerAvailable(ctx, cfg.DockerSocket) {
		c.Executors = append(c.Executors, "docker")
	}
	return c
}

// nvidiaQuery is the field list DetectGPUs asks nvidia-smi for, in order.
const nvidiaQuery = "index,uuid,name,memory.total,driver_version"

// DetectGPUs lists NVIDIA GPUs with `nvidia-smi --query-gpu`. No nvidia-smi on PATH means no GPUs and no error.
func DetectGPUs(ctx context.Context, nvidiaSMI string) ([]GPU, error) {
	if nvidiaSMI == "" {
		nvidiaSMI = "nvidia-smi"
	}
	path, err := exec.LookPath(nvidiaSMI)
	if err != nil {
		return []GPU{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--query-gpu="+nvidiaQuery, "--format=csv,noheader,nounits")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + string(out))
		return []GPU{}, fmt.Errorf("compute: %s failed: %v: %s", path, err, msg)
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI parses the CSV that `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version
// --format=csv,noheader,nounits` prints: one GPU per line.
func ParseNvidiaSMI(out []byte) ([]GPU, error) {
	gpus := []GPU{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) < 5 {
			return nil, fmt.Errorf("compute: nvidia-smi line %d has %d fields, want 5: %q", line, len(f), text)
		}
		// A name could hold a comma: the first two and last two fields are fixed, the name is the rest.
		name := strings.Join(f[2:len(f)-2], ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("compute: nvidia-smi line %d: index %q: %v", line, f[0], err)
		}
		mem, err := strconv.ParseUint(f[len(f)-2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("compute: nvidia-smi line %d: memory.total %q: %v", line, f[len(f)-2], err)
		}
		gpus = append(gpus, GPU{Index: uint32(idx), UUID: f[1], Name: strings.TrimSpace(name), MemoryMiB: mem, DriverVersion: f[len(f)-1]})
	}
	return gpus, sc.Err()
}

func memTotal(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("compute: %s: MemTotal %q: %v", path, rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("compute: " + path + " has no MemTotal line")
}

// dockerAvailable pings the Docker Engine API (GET /_ping) on its unix socket.
func dockerAvailable(ctx context.Context, socket string) bool {
	if socket == "" {
		socket = "/var/run/docker.sock"
		if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
			socket = h
		}
	}
	if _, err := os.Stat(socket); err != nil {
		return false
	}
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
