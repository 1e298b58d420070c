package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// endpoint is one way to reach the API server: its kubeconfig, and the
// discovery cache folders (--cache-dir) of the plugin and of kubectl, each
// warmed once and shared by all runs.
type endpoint struct {
	kubeconfig   string
	pluginCache  string
	kubectlCache string
}

// sample is what one run of a job (one or more processes, in sequence) cost.
type sample struct {
	wallMS   float64
	cpuMS    float64
	maxRSSKB int64
	events   []auditEvent
	bytes    int64
	proxyReq int64
}

// run runs the processes of a job one after the other and measures them:
// wall time and rusage of each process, the audit events of their requests
// and, through the proxy, the bytes they received.
func (b *bench) run(ctx context.Context, procs [][]string) (sample, error) {
	var s sample
	off, err := b.audit.offset()
	if err != nil {
		return s, err
	}
	bytes0, req0 := b.proxy.counters()
	for _, argv := range procs {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = b.env
		cmd.Stdout = b.devNull
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		if err != nil {
			return s, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, stderr.String())
		}
		s.wallMS += ms(wall)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.cpuMS += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
			s.maxRSSKB = max(s.maxRSSKB, ru.Maxrss)
		}
	}
	bytes1, req1 := b.proxy.counters()
	s.bytes, s.proxyReq = bytes1-bytes0, req1-req0
	s.events, err = b.collect(ctx, off)
	return s, err
}

// collect sends a marker request and returns the counted audit events from
// off on.
func (b *bench) collect(ctx context.Context, off int64) ([]auditEvent, error) {
	b.markers++
	marker := fmt.Sprintf("canary-bench-marker-%d", b.markers)
	_, err := b.clients.marker.CoreV1().ConfigMaps(benchNS).Get(ctx, marker, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	events, _, err := b.audit.collect(ctx, off, marker)
	return events, err
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// cmdCase is one command and the same job done with kubectl alone.
type cmdCase struct {
	name string
	// equivalent says in words what the kubectl side does.
	equivalent string
	// reset puts the cluster back in the state the command starts from.
	reset   func(ctx context.Context) error
	plugin  func(ep endpoint) [][]string
	kubectl func(ep endpoint) [][]string
	// verifyPlugin and verifyKubectl check, after an untimed run, that the
	// job was done, so both sides are known to do the same job.
	verifyPlugin, verifyKubectl func(ctx context.Context) error
}

// sideResult is one side (plugin or kubectl) of a command's figures.
type sideResult struct {
	Command  string         `json:"command"`
	RunsMS   []float64      `json:"runsMs"`
	MedianMS float64        `json:"medianMs"`
	MinMS    float64        `json:"minMs"`
	MaxMS    float64        `json:"maxMs"`
	CPUMS    float64        `json:"cpuMsMean"`
	PeakRSS  int64          `json:"peakRssKiB"`
	Requests map[string]int `json:"requests"`
	// RequestTotal is the number of requests of one run; RequestTotals has
	// each timed run's, which differ only if a run retried or rediscovered.
	RequestTotal  int            `json:"requestTotal"`
	RequestTotals []int          `json:"requestTotals"`
	ObjectWrites  map[string]int `json:"objectWrites"`
	Discovery     int            `json:"discoveryRequests"`
	// ServerMS is the API server's time on the requests of each key, and
	// ServerTotalMS on all of them (medians over the timed runs); the rest
	// of the wall time is the client's: process start, TLS, decoding.
	ServerMS      map[string]float64 `json:"serverMsMedian"`
	ServerTotalMS float64            `json:"serverTotalMsMedian"`
	serverRuns    map[string][]float64
	serverTotals  []float64
	Bytes         int64    `json:"bytesReceived"`
	BytesRuns     []int64  `json:"bytesRuns"`
	ProxyRequests []int64  `json:"proxyRequests"`
	Notes         []string `json:"notes,omitempty"`
}

type commandResult struct {
	Name         string     `json:"name"`
	Equivalent   string     `json:"kubectlEquivalent"`
	Plugin       sideResult `json:"plugin"`
	Kubectl      sideResult `json:"kubectl"`
	TimeRatio    float64    `json:"timeRatio"`
	RequestRatio float64    `json:"requestRatio"`
	BytesRatio   float64    `json:"bytesRatio"`
}

type side struct {
	argv   func(endpoint) [][]string
	verify func(context.Context) error
	out    *sideResult
}

// measure runs a command and its kubectl equivalent, interleaved: per
// round, reset then plugin, reset then kubectl (the order alternating
// between rounds), timed against the API server directly; then a few runs
// through the counting proxy for the bytes.
func (b *bench) measure(ctx context.Context, c cmdCase) (commandResult, error) {
	res := commandResult{Name: c.name, Equivalent: c.equivalent}
	sides := []side{{c.plugin, c.verifyPlugin, &res.Plugin}, {c.kubectl, c.verifyKubectl, &res.Kubectl}}
	for _, s := range sides {
		s.out.Command = displayJob(s.argv(b.direct))
		// One untimed run each, checked: the job is done, and the binary
		// is in the page cache.
		if err := c.reset(ctx); err != nil {
			return res, err
		}
		if _, err := b.run(ctx, s.argv(b.direct)); err != nil {
			return res, fmt.Errorf("%s: %w", c.name, err)
		}
		if s.verify != nil {
			if err := s.verify(ctx); err != nil {
				return res, fmt.Errorf("%s: %s did not do the job: %w", c.name, s.out.Command, err)
			}
		}
	}
	for i := 0; i < b.cfg.runs; i++ {
		order := sides
		if i%2 == 1 {
			order = []side{sides[1], sides[0]}
		}
		for _, s := range order {
			if err := c.reset(ctx); err != nil {
				return res, err
			}
			smp, err := b.run(ctx, s.argv(b.direct))
			if err != nil {
				return res, fmt.Errorf("%s: %w", c.name, err)
			}
			s.out.add(smp)
		}
	}
	for i := 0; i < b.cfg.bytesRuns; i++ {
		for _, s := range sides {
			if err := c.reset(ctx); err != nil {
				return res, err
			}
			smp, err := b.run(ctx, s.argv(b.proxied))
			if err != nil {
				return res, fmt.Errorf("%s (through the proxy): %w", c.name, err)
			}
			s.out.BytesRuns = append(s.out.BytesRuns, smp.bytes)
			s.out.ProxyRequests = append(s.out.ProxyRequests, smp.proxyReq)
			if n := len(smp.events); int64(n) != smp.proxyReq {
				s.out.Notes = appendUnique(s.out.Notes, fmt.Sprintf("through the proxy the audit log counted %d requests and the proxy %d", n, smp.proxyReq))
			}
		}
	}
	for _, s := range sides {
		s.out.finish()
	}
	res.TimeRatio = ratio(res.Plugin.MedianMS, res.Kubectl.MedianMS)
	res.RequestRatio = ratio(float64(res.Plugin.RequestTotal), float64(res.Kubectl.RequestTotal))
	res.BytesRatio = ratio(float64(res.Plugin.Bytes), float64(res.Kubectl.Bytes))
	return res, nil
}

func (r *sideResult) add(s sample) {
	r.RunsMS = append(r.RunsMS, s.wallMS)
	r.PeakRSS = max(r.PeakRSS, s.maxRSSKB)
	r.CPUMS += s.cpuMS // summed here, averaged in finish
	if r.serverRuns == nil {
		r.serverRuns = map[string][]float64{}
	}
	sum := 0.0
	for k, v := range serverMS(s.events) {
		r.serverRuns[k] = append(r.serverRuns[k], v)
		sum += v
	}
	r.serverTotals = append(r.serverTotals, sum)
	counts := requestCounts(s.events)
	r.RequestTotals = append(r.RequestTotals, total(counts))
	if r.Requests == nil {
		r.Requests = counts
		r.ObjectWrites = objectWrites(s.events)
		for _, e := range s.events {
			if isDiscovery(e) {
				r.Discovery++
			}
		}
	} else if formatCounts(counts) != formatCounts(r.Requests) {
		r.Notes = appendUnique(r.Notes, fmt.Sprintf("requests differed between runs; one run: %s", formatCounts(counts)))
	}
}

func (r *sideResult) finish() {
	n := len(r.RunsMS)
	if n == 0 {
		return
	}
	r.CPUMS /= float64(n)
	r.MedianMS = median(r.RunsMS)
	r.MinMS, r.MaxMS = r.RunsMS[0], r.RunsMS[0]
	for _, v := range r.RunsMS {
		r.MinMS, r.MaxMS = math.Min(r.MinMS, v), math.Max(r.MaxMS, v)
	}
	r.RequestTotal = total(r.Requests)
	r.ServerMS = map[string]float64{}
	for k, v := range r.serverRuns {
		r.ServerMS[k] = median(v)
	}
	r.ServerTotalMS = median(r.serverTotals)
	if len(r.BytesRuns) > 0 {
		fs := make([]float64, len(r.BytesRuns))
		for i, v := range r.BytesRuns {
			fs[i] = float64(v)
		}
		r.Bytes = int64(median(fs))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// displayJob renders a job's processes as a shell line, with the
// kubeconfig and cache flags, the same for every run, left out.
func displayJob(procs [][]string) string {
	var parts []string
	for _, argv := range procs {
		var words []string
		for i := 0; i < len(argv); i++ {
			a := argv[i]
			if a == "--kubeconfig" || a == "--cache-dir" {
				i++
				continue
			}
			if i == 0 {
				a = baseName(a)
			}
			if strings.ContainsAny(a, " \"'[{") {
				a = "'" + a + "'"
			}
			words = append(words, a)
		}
		parts = append(parts, strings.Join(words, " "))
	}
	return strings.Join(parts, " && ")
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// startupResult is the start time of a command that needs no cluster.
type startupResult struct {
	Name     string         `json:"name"`
	Command  string         `json:"command"`
	RunsMS   []float64      `json:"runsMs"`
	MedianMS float64        `json:"medianMs"`
	PeakRSS  int64          `json:"peakRssKiB"`
	Requests map[string]int `json:"requestsAllRuns"`
}

func (b *bench) startup(ctx context.Context, name string, argv []string) (startupResult, error) {
	r := startupResult{Name: name, Command: displayJob([][]string{argv})}
	off, err := b.audit.offset()
	if err != nil {
		return r, err
	}
	// One untimed run for the page cache.
	if err := b.runQuiet(ctx, argv); err != nil {
		return r, err
	}
	for i := 0; i < b.cfg.startupRuns; i++ {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = b.env
		cmd.Stdout = b.devNull
		cmd.Stderr = b.devNull
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return r, fmt.Errorf("%s: %w", r.Command, err)
		}
		r.RunsMS = append(r.RunsMS, ms(time.Since(t0)))
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSS = max(r.PeakRSS, ru.Maxrss)
		}
	}
	r.MedianMS = median(r.RunsMS)
	events, err := b.collect(ctx, off)
	r.Requests = requestCounts(events)
	return r, err
}

func (b *bench) runQuiet(ctx context.Context, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}
