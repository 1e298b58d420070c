package cmd

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

func TestParseRules(t *testing.T) {
	cases := []struct {
		in   string
		want routing.MatchRule
	}{
		{"x-canary=true", routing.MatchRule{Name: "x-canary", Op: "exact", Value: "true"}},
		{"X-User~^(alice|bob)$", routing.MatchRule{Name: "x-user", Op: "regex", Value: "^(alice|bob)$"}},
		{"user-agent^Mozilla", routing.MatchRule{Name: "user-agent", Op: "prefix", Value: "Mozilla"}},
		{"x-a=b=c", routing.MatchRule{Name: "x-a", Op: "exact", Value: "b=c"}},
	}
	for _, c := range cases {
		got, err := parseHeaderRule(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	for _, bad := range []string{"novalue", "=x", "x=", "bad name=1", "x~(unclosed"} {
		_, err := parseHeaderRule(bad)
		assert.Error(t, err, bad)
	}
	got, err := parseCookieRule("beta=on")
	require.NoError(t, err)
	assert.Equal(t, routing.MatchRule{Cookie: true, Name: "beta", Op: "exact", Value: "on"}, got)
	for _, bad := range []string{"beta", "=on", "beta=", "beta=o n", "be ta=on", "beta=a;b"} {
		_, err := parseCookieRule(bad)
		assert.Error(t, err, bad)
	}
}

// The messages of the flag parsers are what users see (the e2e tests
// compare them): pinned byte for byte.
func TestFlagParserMessages(t *testing.T) {
	_, err := parseHeaderRule("x-tester")
	assert.EqualError(t, err, `--header "x-tester": write NAME=VALUE (exact), NAME~REGEX or NAME^PREFIX, for example --header x-canary=true`)
	_, err = parseHeaderRule("bad name=1")
	assert.EqualError(t, err, `--header "bad name=1": "bad name" is not a valid HTTP header name`)
	_, err = parseHeaderRule("x~(a")
	assert.ErrorContains(t, err, `--header "x~(a": the regular expression does not compile (`)
	assert.ErrorContains(t, err, `); Istio uses RE2 syntax`)
	_, err = parseCookieRule("beta")
	assert.EqualError(t, err, `--cookie "beta": write NAME=VALUE, for example --cookie tester=yes`)
	_, err = parseCookieRule("beta=a;b")
	assert.EqualError(t, err, `--cookie "beta=a;b": cookie names are tokens and values may not hold spaces, commas, semicolons, quotes or backslashes`)
}

func TestParseGatewayRef(t *testing.T) {
	namespace, name, err := parseGatewayRef("istio-system/public-gateway")
	require.NoError(t, err)
	assert.Equal(t, []string{"istio-system", "public-gateway"}, []string{namespace, name})
	for _, bad := range []string{"public-gateway", "/gw", "ns/", "a/b/c", ""} {
		_, _, err := parseGatewayRef(bad)
		assert.EqualError(t, err, `--gateway "`+bad+`": write NAMESPACE/NAME of the Istio Gateway, for example --gateway istio-system/public-gateway`, bad)
	}
}
