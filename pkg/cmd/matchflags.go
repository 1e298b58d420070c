package cmd

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// matchFlags are --header and --cookie, shared by start and route.
type matchFlags struct {
	headers []string
	cookies []string
}

func (m *matchFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&m.headers, "header", nil, "Send requests with this header to the canary: NAME=VALUE (exact), NAME~REGEX or NAME^PREFIX. Repeatable; all must match.")
	cmd.Flags().StringArrayVar(&m.cookies, "cookie", nil, "Send requests with this cookie to the canary: NAME=VALUE. Repeatable (up to 3); all must match, together with every --header.")
}

func (m *matchFlags) rules() ([]routing.MatchRule, error) {
	var rules []routing.MatchRule
	for _, h := range m.headers {
		r, err := parseHeaderRule(h)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	for _, c := range m.cookies {
		r, err := parseCookieRule(c)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

var headerName = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_|~-]+$`)
var cookieName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)

// parseHeaderRule reads --header NAME=VALUE (exact), NAME~REGEX or
// NAME^PREFIX. Istio matches header names in lower case.
func parseHeaderRule(s string) (routing.MatchRule, error) {
	i := strings.IndexAny(s, "=~^")
	if i <= 0 || i == len(s)-1 {
		return routing.MatchRule{}, fmt.Errorf("--header %q: write NAME=VALUE (exact), NAME~REGEX or NAME^PREFIX, for example --header x-canary=true", s)
	}
	rule := routing.MatchRule{Name: strings.ToLower(strings.TrimSpace(s[:i])), Op: map[byte]string{'=': "exact", '~': "regex", '^': "prefix"}[s[i]], Value: s[i+1:]}
	if !headerName.MatchString(rule.Name) {
		return routing.MatchRule{}, fmt.Errorf("--header %q: %q is not a valid HTTP header name", s, rule.Name)
	}
	if rule.Op == "regex" {
		// Envoy uses RE2, which is what Go's regexp implements.
		if _, err := regexp.Compile(rule.Value); err != nil {
			return routing.MatchRule{}, fmt.Errorf("--header %q: the regular expression does not compile (%v); Istio uses RE2 syntax", s, err)
		}
	}
	return rule, nil
}

// parseCookieRule reads --cookie NAME=VALUE.
func parseCookieRule(s string) (routing.MatchRule, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" || value == "" {
		return routing.MatchRule{}, fmt.Errorf("--cookie %q: write NAME=VALUE, for example --cookie tester=yes", s)
	}
	if !cookieName.MatchString(name) || strings.ContainsAny(value, "; ,\"\\") {
		return routing.MatchRule{}, fmt.Errorf("--cookie %q: cookie names are tokens and values may not hold spaces, commas, semicolons, quotes or backslashes", s)
	}
	return routing.MatchRule{Cookie: true, Name: name, Op: "exact", Value: value}, nil
}

// parseGatewayRef reads --gateway NAMESPACE/NAME.
func parseGatewayRef(s string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(s, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--gateway %q: write NAMESPACE/NAME of the Istio Gateway, for example --gateway istio-system/public-gateway", s)
	}
	return namespace, name, nil
}

// mirrorFlag is --mirror PERCENT; unset leaves a running canary's mirror alone.
type mirrorFlag struct{ percent int }

func (m *mirrorFlag) addFlag(cmd *cobra.Command) {
	cmd.Flags().IntVar(&m.percent, "mirror", 0, "Shadow this share (0-100) of the managed routes' traffic to the canary; responses to the copies are discarded. 0 stops mirroring.")
}

func (m *mirrorFlag) intent(cmd *cobra.Command) (*int, error) {
	if !cmd.Flags().Changed("mirror") {
		return nil, nil
	}
	if err := checkPercent("--mirror", m.percent, "the share of traffic to shadow"); err != nil {
		return nil, err
	}
	p := m.percent
	return &p, nil
}
