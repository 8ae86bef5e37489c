package compute

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseNvidiaSMI(t *testing.T) {
	out := []byte("0, GPU-6f1b2c3d-aaaa-bbbb-cccc-0123456789ab, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n" +
		"1, GPU-00000000-1111-2222-3333-444444444444, NVIDIA GeForce RTX 4090, 24564, 550.54.15\n\n")
	got, err := ParseNvidiaSMI(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []GPU{
		{Index: 0, UUID: "GPU-6f1b2c3d-aaaa-bbbb-cccc-0123456789ab", Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559, DriverVersion: "550.54.15"},
		{Index: 1, UUID: "GPU-00000000-1111-2222-3333-444444444444", Name: "NVIDIA GeForce RTX 4090", MemoryMiB: 24564, DriverVersion: "550.54.15"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if g, _ := ParseNvidiaSMI([]byte("3, GPU-x, Odd, Name, 1024, 1.0\n")); len(g) != 1 || g[0].Name != "Odd, Name" {
		t.Fatalf("name with a comma: %+v", g)
	}
	for _, bad := range []string{"0, GPU-x, Name\n", "x, GPU-x, Name, 1, 2\n", "0, GPU-x, Name, [N/A], 2\n"} {
		if _, err := ParseNvidiaSMI([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// A host without nvidia-smi has no GPUs, and that is not an error.
func TestNoNvidiaSMIMeansNoGPUs(t *testing.T) {
	gpus, err := DetectGPUs(context.Background(), "/nonexistent/nvidia-smi")
	if err != nil || len(gpus) != 0 {
		t.Fatalf("got %v, %v", gpus, err)
	}
}

// DetectGPUs runs the real command line: a script standing in for nvidia-smi checks the arguments it gets.
func TestDetectGPUsRunsTheQuery(t *testing.T) {
	dir := t.TempDir()
	smi := filepath.Join(dir, "nvidia-smi")
	script := `#!/bin/sh
[ "$1" = "--query-gpu=index,uuid,name,memory.total,driver_version" ] || exit 3
[ "$2" = "--format=csv,noheader,nounits" ] || exit 4
echo "0, GPU-1, NVIDIA H200, 143771, 560.35.03"
`
	if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	gpus, err := DetectGPUs(context.Background(), smi)
	if err != nil || len(gpus) != 1 || gpus[0].Name != "NVIDIA H200" || gpus[0].MemoryMiB != 143771 {
		t.Fatalf("got %+v, %v", gpus, err)
	}

	failing := filepath.Join(dir, "broken-smi")
	os.WriteFile(failing, []byte("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9\n"), 0o755)
	gpus, err = DetectGPUs(context.Background(), failing)
	if err == nil || !strings.Contains(err.Error(), "could not communicate") || len(gpus) != 0 {
		t.Fatalf("a failing nvidia-smi: %v, %v", gpus, err)
	}
}

func TestProbeReportsThisHost(t *testing.T) {
	c := Probe(context.Background(), ProbeConfig{NvidiaSMI: "/nonexistent", DockerSocket: "/nonexistent.sock"})
	if c.CPUCores == 0 || c.MemoryBytes == 0 {
		t.Fatalf("probe found no CPU or memory: %+v", c)
	}
	if !reflect.DeepEqual(c.Executors, []string{"builtin"}) {
		t.Fatalf("without docker the executors are %v", c.Executors)
	}
}
