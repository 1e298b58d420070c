package routing

import (
	"fmt"
	"strings"
)

// AgreesWithRunning refuses an intent to start whose versions are not those
// of the running canary st: a run that resumes or takes over a canary goes
// on with the versions it was started with. Versions the intent leaves out
// always agree.
func AgreesWithRunning(snap Snapshot, st *State, intent Intent) error {
	var differ []string
	var args []interface{}
	add := func(format string, a ...interface{}) {
		differ = append(differ, format)
		args = append(args, a...)
	}
	if intent.VersionLabel != "" && intent.VersionLabel != st.VersionLabel {
		add("{VersionLabel} %s, but its versions are told apart by %s", intent.VersionLabel, st.VersionLabel)
	}
	if intent.Stable != "" && intent.Stable != st.Stable {
		add("{Stable} %s, but its stable version is %s=%s", intent.Stable, st.VersionLabel, st.Stable)
	}
	if intent.Canary != "" && intent.Canary != st.Canary {
		add("{Canary} %s, but it runs %s=%s", intent.Canary, st.VersionLabel, st.Canary)
	}
	if name := intent.CanaryDeployment; name != "" {
		value, found := "", false
		for _, d := range snap.Deployments {
			if d.Name == name && d.Namespace == snap.Service.Namespace {
				value, found = d.Spec.Template.Labels[st.VersionLabel], true
			}
		}
		switch {
		case !found:
			add("{CanaryDeployment} %s, but there is no such deployment behind it", name)
		case value != st.Canary:
			add("{CanaryDeployment} %s, which is %s=%s, but it runs %s=%s", name, st.VersionLabel, value, st.VersionLabel, st.Canary)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	format := fmt.Sprintf("the canary of service %%s/%%s already runs, with other versions: %s; leave these out to go on with it, or promote or abort it first", strings.Join(differ, "; "))
	return intentErrorf(format, append([]interface{}{snap.Service.Namespace, snap.Service.Name}, args...)...)
}
