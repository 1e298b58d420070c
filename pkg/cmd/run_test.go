package cmd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
