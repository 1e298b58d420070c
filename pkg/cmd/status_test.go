package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// lockedBuffer is a bytes.Buffer a running command and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWatch runs `kubectl canary ARGS...` until stop, which returns its
// error; out has what it printed so far.
func (f *fakeCluster) startWatch(args ...string) (out *lockedBuffer, stop func() error) {
	out = &lockedBuffer{}
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f), IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: out}})
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	return out, func() error {
		cancel()
		return <-done
	}
}

func waitForOutput(t *testing.T, out *lockedBuffer, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(out.String()) {
		require.True(t, time.Now().Before(deadline), "status --watch never printed %s:\n%s", what, out.String())
		time.Sleep(10 * time.Millisecond)
	}
}

// reads counts the list and watch calls of the fakes by resource.
func (f *fakeCluster) reads() map[string]int {
	out := map[string]int{}
	for _, actions := range [][]clienttesting.Action{f.core.Actions(), f.dynamic.Actions()} {
		for _, a := range actions {
			if a.GetVerb() == "list" || a.GetVerb() == "watch" {
				out[a.GetVerb()+" "+a.GetResource().Resource]++
			}
		}
	}
	return out
}

// status --watch prints the header once and a row per canary, then a row
// again when the canary changes: it follows watch events, and lists each
// resource once, when it starts.
func TestStatusWatchPrintsAChangedCanary(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	before := f.reads()

	out, stop := f.startWatch("status", "--watch")
	waitForOutput(t, out, "the first row", func(s string) bool { return strings.Contains(s, "10%") })
	watched := f.reads()
	for _, resource := range []string{"services", "deployments", "virtualservices", "destinationrules"} {
		assert.Equal(t, 1, watched["list "+resource]-before["list "+resource], "one list of %s", resource)
		assert.Equal(t, 1, watched["watch "+resource], "one watch of %s", resource)
	}

	_, _, err = f.run("weight", "reviews", "40")
	require.NoError(t, err)
	waitForOutput(t, out, "the changed row", func(s string) bool { return strings.Contains(s, "40%") })
	require.NoError(t, stop(), "the end of the context ends --watch cleanly")
	assert.Regexp(t, `^SERVICE\s+STABLE\s+CANARY\s+WEIGHT\s+DRIFT\s+PHASE\s+STABLE READY\s+CANARY READY\s+AGE\s+ROUTING\n`+
		`reviews\s+v1\s+v2\s+10%\s+-\s+Progressing\s+3/3\s+1/1\s+\S+\s+-\n`+
		`reviews\s+v1\s+v2\s+40%\s+-\s+Progressing\s+3/3\s+1/1\s+\S+\s+-\n$`, out.String())
}

// --interval once set how often --watch read the cluster; scripts that
// still pass it run on, with a note on standard error that keeps standard
// output what it was.
func TestStatusIntervalIsDeprecated(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	stdout, stderr, err := f.run("status", "reviews", "--interval", "5s", "-o", "json")
	require.NoError(t, err)
	assert.True(t, json.Valid([]byte(stdout)), "standard output stays JSON:\n%s", stdout)
	assert.Equal(t, "Flag --interval has been deprecated, status --watch follows the API server's watch events as they happen, so there is no interval to set; leave the flag out\n", stderr)

	help, _, err := f.run("status", "--help")
	require.NoError(t, err)
	assert.NotContains(t, help, "--interval")
}

// --observed reads Prometheus once, so it does not go with --watch; an
// unreachable Prometheus leaves the shares unknown, with one warning that
// names it and the fix.
func TestStatusObservedFlags(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	_, _, err = f.run("status", "--observed", "--watch")
	assert.EqualError(t, err, "--observed reads Prometheus once; leave out --watch, or run kubectl canary analyze for one Service")
	_, _, err = f.run("status", "--observed", "--window", "0s")
	assert.ErrorContains(t, err, "--window 0s is not a duration of traffic")
	stdout, stderr, err := f.run("status", "--observed", "--prometheus-url", "http://127.0.0.1:1")
	require.NoError(t, err)
	assert.Regexp(t, `SERVICE\s+STABLE\s+CANARY\s+WEIGHT\s+OBSERVED\s+DRIFT\s+PHASE`, stdout)
	assert.Regexp(t, `\nreviews\s+v1\s+v2\s+10%\s+unknown\s+-\s+Progressing`, stdout)
	assert.Regexp(t, `^Warning: Prometheus at http://127.0.0.1:1 cannot be reached \(dial tcp 127.0.0.1:1: connect: connection refused\); check --prometheus-url[^\n]*; the OBSERVED shares are unknown\n$`, stderr)
	stdout, _, err = f.run("status", "--observed", "--prometheus-url", "http://127.0.0.1:1", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, stdout, `"verdict": "unknown"`)

	// Without --observed there is no column and no Prometheus.
	stdout, _, err = f.run("status", "--prometheus-url", "http://127.0.0.1:1")
	require.NoError(t, err)
	assert.NotContains(t, stdout, "OBSERVED")
}

// status --watch prints its table in parts; every later row lines up with
// the header, however narrow its cells, and a wider one widens its column
// and prints the header again, aligned with the rows below it.
func TestWatchRowsStayAlignedWithTheHeader(t *testing.T) {
	var out bytes.Buffer
	table := &alignedTable{out: &out, header: true}
	fmt.Fprint(table, "SERVICE\tWEIGHT\tPHASE\n")
	fmt.Fprint(table, "a-service-with-a-long-name\t10%\tProgressing\nreviews\t20%\tProgressing\n")
	require.NoError(t, table.Flush())
	fmt.Fprint(table, "reviews\t40%\tProgressing\n")
	require.NoError(t, table.Flush())
	fmt.Fprint(table, "ratings\t100%-and-more\tPromoted\n")
	require.NoError(t, table.Flush())
	assert.Equal(t, ""+
		"SERVICE                      WEIGHT   PHASE\n"+
		"a-service-with-a-long-name   10%      Progressing\n"+
		"reviews                      20%      Progressing\n"+
		"reviews                      40%      Progressing\n"+
		"SERVICE                      WEIGHT          PHASE\n"+
		"ratings                      100%-and-more   Promoted\n", out.String())

	// The same widths as kubectl's tabwriter for one part.
	var tab bytes.Buffer
	w := printers.GetNewTabWriter(&tab)
	fmt.Fprint(w, "SERVICE\tWEIGHT\tPHASE\na-service-with-a-long-name\t10%\tProgressing\nreviews\t20%\tProgressing\n")
	require.NoError(t, w.Flush())
	assert.True(t, strings.HasPrefix(out.String(), tab.String()), "tabwriter:\n%s", tab.String())
}

// --no-headers and -o wide hold under --watch too.
func TestStatusWatchWithoutHeadersAndWide(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	out, stop := f.startWatch("status", "--watch", "--no-headers", "-o", "wide")
	waitForOutput(t, out, "the first row", func(s string) bool { return strings.Contains(s, "10%") })
	_, _, err = f.run("weight", "reviews", "40")
	require.NoError(t, err)
	waitForOutput(t, out, "the changed row", func(s string) bool { return strings.Contains(s, "40%") })
	require.NoError(t, stop())
	assert.Regexp(t, `^reviews\s+v1\s+v2\s+10%\s+-\s+Progressing\s+3/3\s+1/1\s+\S+\s+-\s+version\s+istio\s+DestinationRule/reviews,VirtualService/reviews\n`+
		`reviews\s+v1\s+v2\s+40%\s+-\s+Progressing\s+3/3\s+1/1\s+\S+\s+-\s+version\s+istio\s+DestinationRule/reviews,VirtualService/reviews\n$`, out.String())
}
