package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// goBenchmark is one line of `go test -bench -benchmem`, or the median of
// several runs of one benchmark (Runs, with the fastest and slowest).
type goBenchmark struct {
	Name        string  `json:"name"`
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"nsPerOp"`
	BytesPerOp  int64   `json:"bytesPerOp"`
	AllocsPerOp int64   `json:"allocsPerOp"`
	Runs        int     `json:"runs,omitempty"`
	MinNsPerOp  float64 `json:"minNsPerOp,omitempty"`
	MaxNsPerOp  float64 `json:"maxNsPerOp,omitempty"`
}

// goBenchRuns is how many times each benchmark runs: on a 2-core machine
// shared with a local API server, one run can land on a busy moment.
const goBenchRuns = 5

// goBench runs the routing core's benchmarks and gives each one's median.
func goBench(ctx context.Context, goCmd string) ([]goBenchmark, error) {
	cmd := exec.CommandContext(ctx, goCmd, "test", "./pkg/routing", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(goBenchRuns))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %w\n%s%s", err, out, stderr.String())
	}
	benches := medians(parseGoBench(out))
	if len(benches) == 0 {
		return nil, fmt.Errorf("go test -bench printed no benchmark:\n%s", out)
	}
	return benches, nil
}

// medians folds the runs of each benchmark into one: the run of median
// time, with the number of runs and the fastest and slowest times.
func medians(runs []goBenchmark) []goBenchmark {
	var names []string
	byName := map[string][]goBenchmark{}
	for _, b := range runs {
		if byName[b.Name] == nil {
			names = append(names, b.Name)
		}
		byName[b.Name] = append(byName[b.Name], b)
	}
	out := make([]goBenchmark, 0, len(names))
	for _, name := range names {
		all := byName[name]
		sort.Slice(all, func(i, j int) bool { return all[i].NsPerOp < all[j].NsPerOp })
		m := all[len(all)/2]
		if len(all)%2 == 0 {
			m.NsPerOp = (all[len(all)/2-1].NsPerOp + all[len(all)/2].NsPerOp) / 2
		}
		m.Runs, m.MinNsPerOp, m.MaxNsPerOp = len(all), all[0].NsPerOp, all[len(all)-1].NsPerOp
		out = append(out, m)
	}
	return out
}

func parseGoBench(out []byte) []goBenchmark {
	var benches []goBenchmark
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := goBenchmark{Name: f[0]}
		var err error
		if b.Iterations, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = int64(v)
			case "allocs/op":
				b.AllocsPerOp = int64(v)
			}
		}
		benches = append(benches, b)
	}
	return benches
}

// sizeInfo is the size of the two binaries, and where the plugin's comes
// from: the symbol bytes of each module in an unstripped build of it.
type sizeInfo struct {
	PluginBytes  int64        `json:"pluginBytes"`
	KubectlBytes int64        `json:"kubectlBytes"`
	Modules      int          `json:"modules"`
	SymbolBytes  int64        `json:"symbolBytes"`
	ByModule     []moduleSize `json:"symbolBytesByModule"`
}

type moduleSize struct {
	Module string `json:"module"`
	Bytes  int64  `json:"bytes"`
}

func (b *bench) sizes(ctx context.Context, work string) (sizeInfo, error) {
	var s sizeInfo
	for _, f := range []struct {
		path string
		dst  *int64
	}{{b.cfg.plugin, &s.PluginBytes}, {b.cfg.kubectl, &s.KubectlBytes}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return s, err
		}
		*f.dst = fi.Size()
	}
	out, err := exec.CommandContext(ctx, b.cfg.goCmd, "version", "-m", b.cfg.plugin).Output()
	if err != nil {
		return s, fmt.Errorf("go version -m: %w", err)
	}
	modules := buildModules(out)
	s.Modules = len(modules) - 1
	syms := filepath.Join(work, "kubectl-canary.syms")
	build := exec.CommandContext(ctx, b.cfg.goCmd, "build", "-trimpath", "-o", syms, "./cmd/kubectl-canary")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return s, fmt.Errorf("go build (with symbols): %w\n%s", err, out)
	}
	nm, err := exec.CommandContext(ctx, b.cfg.goCmd, "tool", "nm", "-size", syms).Output()
	if err != nil {
		return s, fmt.Errorf("go tool nm: %w", err)
	}
	s.ByModule, s.SymbolBytes = symbolBytesByModule(nm, modules)
	return s, nil
}

// buildModules lists the main module and the dependencies that `go version
// -m` shows for a binary.
func buildModules(out []byte) []string {
	var mods []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && (f[0] == "mod" || f[0] == "dep") {
			mods = append(mods, f[1])
		}
	}
	return mods
}

// symbolBytesByModule adds up the `go tool nm -size` sizes of code and
// read-only data by the module of each symbol's package; the standard
// library, the runtime and its tables count as "std".
func symbolBytesByModule(nm []byte, modules []string) ([]moduleSize, int64) {
	sort.Slice(modules, func(i, j int) bool { return len(modules[i]) > len(modules[j]) })
	sizes := map[string]int64{}
	var sum int64
	sc := bufio.NewScanner(bytes.NewReader(nm))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size == 0 || !strings.Contains("TtRr", f[2]) {
			// Code and read-only data only: data and bss symbols include
			// large zeroed buffers that take no room in the file.
			continue
		}
		sum += size
		sizes[moduleOf(strings.Join(f[3:], " "), modules)] += size
	}
	var out []moduleSize
	for m, n := range sizes {
		out = append(out, moduleSize{Module: m, Bytes: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out, sum
}

func moduleOf(symbol string, modulesLongestFirst []string) string {
	s := symbol
	for _, p := range []string{"type:", "go:itab.", "go:"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimLeft(s, "*[]()0123456789")
	s = strings.TrimPrefix(s, "map[")
	s = strings.TrimLeft(s, "*[]()")
	for _, m := range modulesLongestFirst {
		if strings.HasPrefix(s, m) && len(s) > len(m) && (s[len(m)] == '/' || s[len(m)] == '.') {
			return m
		}
	}
	// The package path ends at the first dot after its last slash.
	if i := strings.IndexAny(s, " ([{,;"); i >= 0 {
		s = s[:i]
	}
	pkg := s
	slash := strings.LastIndexByte(s, '/')
	if dot := strings.IndexByte(s[slash+1:], '.'); dot >= 0 {
		pkg = s[:slash+1+dot]
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		return "std"
	}
	return "other"
}
