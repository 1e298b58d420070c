package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTextNamesFieldsByPlaceholder(t *testing.T) {
	text := textf("{Canary} %s: no such version; pass {Canary} or {Stable}, not {Unknown}", "{Stable}")
	assert.Equal(t, "canary {Stable}: no such version; pass canary or stable, not {Unknown}", text.String(), "arguments are never searched for placeholders")
	assert.Equal(t, "--canary {Stable}: no such version; pass --canary or --stable, not {Unknown}",
		text.Render(func(f Field) string { return "--" + strings.ToLower(string(f)) }))
	assert.Equal(t, []Field{FieldCanary, FieldStable}, text.Fields())
	for f, word := range fieldWords {
		if f != FieldTarget { // the core has no word for it: see FieldTarget
			assert.NotEmpty(t, word, f)
		}
	}
}

// A command the core suggests names its target by {Target}: the core's
// words leave it out, a caller names it with its flags; %w wraps as
// fmt.Errorf does.
func TestTextErrorsNameTheTarget(t *testing.T) {
	_, err := Compute(*loadSnapshot(t, "no-istio"), weight(20))
	require.Error(t, err)
	assert.EqualError(t, err, "no canary in progress for service shop/reviews; start one with kubectl canary start reviews")
	text, ok := Textual(err)
	require.True(t, ok, "%T", err)
	assert.Equal(t, []Field{FieldTarget}, text.Fields())
	assert.Equal(t, "no canary in progress for service shop/reviews; start one with kubectl canary start reviews -n shop",
		text.Render(func(f Field) string { return map[Field]string{FieldTarget: " -n shop"}[f] }))

	inner := errors.New("Prometheus is gone")
	wrapped := Errorf("%w; kubectl canary run %s{Target} resumes", inner, "reviews")
	assert.EqualError(t, wrapped, "Prometheus is gone; kubectl canary run reviews resumes")
	assert.ErrorIs(t, wrapped, inner)
	text, _ = Textual(wrapped)
	assert.Equal(t, "Prometheus is gone; kubectl canary run reviews --context prod resumes", text.Render(func(Field) string { return " --context prod" }))
}

// Errors that ask for another intent are IntentErrors naming the fields to
// change; the others are not.
func TestIntentErrorsNameTheirFields(t *testing.T) {
	cases := []struct {
		name    string
		cluster string
		intent  Intent
		want    []Field
	}{
		{"unknown canary", "no-istio", Intent{Action: ActionStart, Weight: 10, Canary: "v9"}, []Field{FieldCanary}},
		{"unknown stable", "no-istio", Intent{Action: ActionStart, Weight: 10, Stable: "v0"}, []Field{FieldStable}},
		{"canary and deployment disagree", "no-istio", Intent{Action: ActionStart, Weight: 10, Canary: "v1", CanaryDeployment: "reviews-v2"}, []Field{FieldCanary, FieldCanaryDeployment}},
		{"unknown route", "bookinfo-adopted", Intent{Action: ActionStart, Weight: 10, Canary: "v3", Routes: []string{"nope"}}, []Field{FieldRoutes}},
		{"several canaries", "bookinfo-adopted", start(10), []Field{FieldCanary}},
		{"missing version label", "no-istio", Intent{Action: ActionStart, Weight: 10, VersionLabel: "track"}, []Field{FieldVersionLabel}},
		{"unknown gateway", "hosts-and-gateway", Intent{Action: ActionStart, Weight: 10, Gateway: &GatewayIntent{Namespace: "istio-system", Name: "nope", Hosts: []string{"www.example.com"}}}, []Field{FieldGateway}},
		{"too many cookies", "no-istio", Intent{Action: ActionStart, Weight: 10, Matches: []MatchRule{
			{Cookie: true, Name: "a", Op: "exact", Value: "1"}, {Cookie: true, Name: "b", Op: "exact", Value: "1"},
			{Cookie: true, Name: "c", Op: "exact", Value: "1"}, {Cookie: true, Name: "d", Op: "exact", Value: "1"}}}, []Field{FieldCookieMatches}},
		{"header cookie and cookie", "no-istio", Intent{Action: ActionStart, Weight: 10, Matches: []MatchRule{
			{Name: "cookie", Op: "exact", Value: "a=1"}, {Cookie: true, Name: "b", Op: "exact", Value: "1"}}}, []Field{FieldHeaderMatches, FieldCookieMatches}},
		{"no canary", "no-istio", weight(20), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compute(*loadSnapshot(t, c.cluster), c.intent)
			require.Error(t, err)
			var intentErr *IntentError
			if c.want == nil {
				assert.False(t, errors.As(err, &intentErr), "%v", err)
				return
			}
			require.True(t, errors.As(err, &intentErr), "%v", err)
			assert.Equal(t, c.want, intentErr.Text.Fields())
			assert.NotContains(t, err.Error(), "--", "the core names no flag")
		})
	}
}

// Findings name the parts of the request in the core's words; Text names
// the field, for the command line to word as a flag.
func TestFindingsNameTheOverride(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	snap.Deployments[1].Status.AvailableReplicas = 0
	findings := Check(*snap, Intent{}, CheckOptions{})
	require.Len(t, findings, 1)
	assert.Equal(t, []Field{FieldOverride}, findings[0].Text.Fields())
	assert.True(t, strings.HasSuffix(findings[0].Message, "or pass an override"), findings[0].Message)
	assert.Equal(t, findings[0].Text.String(), findings[0].Message)

	snap = loadSnapshot(t, "no-istio")
	for i := range snap.Deployments {
		delete(snap.Deployments[i].Spec.Template.Labels, "version")
	}
	findings = Check(*snap, Intent{}, CheckOptions{})
	require.Len(t, findings, 1)
	assert.Equal(t, []Field{FieldVersionLabel}, findings[0].Text.Fields())
	assert.Contains(t, findings[0].Message, "or pass version label")
	assert.NotContains(t, findings[0].Message, "--", "the core names no flag")
}
