package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

func TestRunValidate(t *testing.T) {
	valid := func() *RunOptions {
		o := &RunOptions{steps: []int{5, 10, 100}, interval: time.Minute, maxInconclusive: 3}
		o.window = time.Minute
		o.maxErrorRate, o.maxErrorRateIncrease, o.maxLatencyRatio, o.minRequests = 1, 1, 1.5, 20
		return o
	}
	assert.NoError(t, valid().Validate())
	for name, tc := range map[string]struct {
		change func(*RunOptions)
		err    string
	}{
		"no steps":        {func(o *RunOptions) { o.steps = nil }, "--steps is empty"},
		"zero weight":     {func(o *RunOptions) { o.steps = []int{0, 50} }, "step weight 0 is out of range"},
		"over 100":        {func(o *RunOptions) { o.steps = []int{50, 101} }, "step weight 101 is out of range"},
		"not increasing":  {func(o *RunOptions) { o.steps = []int{10, 10, 50} }, "--steps 10,10,50 must increase"},
		"short interval":  {func(o *RunOptions) { o.interval = 5 * time.Second }, "--interval 5s is too short"},
		"negative holds":  {func(o *RunOptions) { o.maxInconclusive = -1 }, "--max-inconclusive cannot be negative"},
		"short window":    {func(o *RunOptions) { o.window = time.Second }, "--window 1s is too short"},
		"error rate >100": {func(o *RunOptions) { o.maxErrorRate = 150 }, "--max-error-rate 150 is not a percentage"},
	} {
		t.Run(name, func(t *testing.T) {
			o := valid()
			tc.change(o)
			assert.ErrorContains(t, o.Validate(), tc.err)
		})
	}
}

// On a terminal the wait is one line rewritten in place; elsewhere, one log
// line per wait. An interrupted wait says where the canary stays.
func TestRunProgressOnATerminalAndInALog(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		run := &routing.RunState{Steps: []int{10, 50}, Step: 1, StepStartedAt: time.Now()}
		var out bytes.Buffer
		o := &RunOptions{globalOptions: &globalOptions{IOStreams: genericiooptions.IOStreams{Out: &out}}, service: "reviews", interval: 1500 * time.Millisecond, now: time.Now}
		o.onTerminal = func() bool { return terminal }
		o.lastMetrics = "canary 1.0 rps"
		require.NoError(t, o.wait(context.Background(), run))
		if terminal {
			assert.Contains(t, out.String(), "\r\033[Kstep 2/2: canary at 50%, analysing in ")
			assert.Contains(t, out.String(), "; last: canary 1.0 rps")
			assert.NotContains(t, out.String(), "\n", "a terminal gets one line, rewritten")
		} else {
			assert.Regexp(t, `^step 2/2: canary at 50%: analysing in \d+s\n$`, out.String())
		}
	}
	var out bytes.Buffer
	o := &RunOptions{globalOptions: &globalOptions{IOStreams: genericiooptions.IOStreams{Out: &out}}, service: "reviews", interval: time.Hour, now: time.Now}
	o.onTerminal = func() bool { return true }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := o.wait(ctx, &routing.RunState{Steps: []int{10, 50}, StepStartedAt: time.Now()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "interrupted at step 1/2 with the canary at 10%; it stays there, and kubectl canary run reviews resumes from this step")
	assert.True(t, strings.HasSuffix(out.String(), "\n"), "the progress line is ended before the error")
}
