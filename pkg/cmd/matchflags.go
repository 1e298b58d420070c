package cmd

import (
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
		r, err := routing.ParseHeaderRule(h)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	for _, c := range m.cookies {
		r, err := routing.ParseCookieRule(c)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
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
