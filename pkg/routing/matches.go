package routing

import (
	"fmt"
)

// MatchRule is one request attribute that sends a request to the canary:
// a header (exact, regex or prefix) or a cookie (exact).
type MatchRule struct {
	Cookie bool   `json:"cookie,omitempty"`
	Name   string `json:"name"`
	// Op is exact, regex or prefix, Istio's StringMatch kinds.
	Op    string `json:"op"`
	Value string `json:"value"`
}

func (m MatchRule) String() string {
	if m.Cookie {
		return fmt.Sprintf("cookie %s=%s", m.Name, m.Value)
	}
	op := map[string]string{"exact": "=", "regex": "~", "prefix": "^"}[m.Op]
	return fmt.Sprintf("header %s%s%s", m.Name, op, m.Value)
}
