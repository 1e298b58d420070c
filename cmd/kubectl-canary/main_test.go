package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTimeoutsAreRecognised(t *testing.T) {
	assert.True(t, isTimeout(fmt.Errorf("cannot read service: %w", context.DeadlineExceeded)))
	assert.True(t, isTimeout(errors.New(`Get "https://127.0.0.1:1/api?timeout=2s": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)))
	assert.False(t, isTimeout(errors.New("service \"x\" not found")))
}
