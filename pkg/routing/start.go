package routing

import (
	"fmt"
	"strings"
	"time"
)

// start begins a canary, or applies the same start again: the versions
// and which is stable and which the canary are decided here, the routing
// by the backend.
func (p *planner) start() (*State, error) {
	if err := validateWeight(p.intent.Weight); err != nil {
		return nil, err
	}
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	label := p.intent.VersionLabel
	if label == "" && active != nil {
		label = active.VersionLabel
	}
	versions, err := inferVersions(p.snap.Service, p.deployments, label)
	if err != nil {
		return nil, err
	}
	if err := p.backend.prepareStart(); err != nil {
		return nil, err
	}
	stable, err := p.chooseStable(versions, active)
	if err != nil {
		return nil, err
	}
	canary, err := p.chooseCanary(versions, stable)
	if err != nil {
		return nil, err
	}
	if active != nil && (active.Stable != stable || active.Canary != canary || active.VersionLabel != versions.Label) {
		return nil, fmt.Errorf("a canary of service %s/%s is already in progress (%s %s at %d%%, canary %s); promote or abort it before starting another", p.svc.namespace, p.svc.name, active.VersionLabel, active.Stable, 100-active.Weight, active.Canary)
	}
	return p.backend.startCanary(p.startState(versions.Label, stable, canary, active), versions)
}

// startState is the state start records, before the backend names the
// versions and the routes.
func (p *planner) startState(label, stable, canary string, active *State) State {
	base := State{
		Service:      p.svc.name,
		VersionLabel: label,
		Stable:       stable,
		Canary:       canary,
		Phase:        PhaseProgressing,
		StartedAt:    p.snap.Now.UTC().Truncate(time.Second),
		Matches:      p.intent.Matches,
		Sticky:       p.intent.Sticky,
	}
	if p.intent.Mirror != nil {
		base.Mirror = *p.intent.Mirror
	}
	if active != nil {
		base.StartedAt = active.StartedAt
	}
	return base
}

// chooseStable is the intent's stable version, else the running canary's,
// else the one the routes send traffic to, else the oldest.
func (p *planner) chooseStable(versions *Versions, active *State) (string, error) {
	if v := p.intent.Stable; v != "" {
		if versions.ByName[v] == nil {
			return "", intentErrorf("{Stable} %s: service %s/%s has no such version (%s values: %s)", v, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
		}
		return v, nil
	}
	if active != nil && versions.ByName[active.Stable] != nil {
		return active.Stable, nil
	}
	routed := p.backend.routedVersions(versions)
	switch {
	case len(routed) == 0:
		return oldestVersion(versions), nil
	case len(routed) == 1:
		return routed[0], nil
	}
	// The routes split the traffic already: between exactly the canary
	// asked for and one other version, that other one is stable, and the
	// split is adopted as the canary's.
	if canary := p.askedCanary(versions.Label); len(routed) == 2 && (canary == routed[0] || canary == routed[1]) {
		if canary == routed[0] {
			return routed[1], nil
		}
		return routed[0], nil
	}
	return "", intentErrorf("the routes of service %s/%s already send traffic to several versions (%v); pass {Stable} with the one that serves users today (or, where they split between two, {Canary} with the other one)", p.svc.namespace, p.svc.name, routed)
}

// askedCanary is the canary version the intent names, by value or by
// Deployment, "" when it names none (chooseCanary reports a name that
// matches nothing).
func (p *planner) askedCanary(label string) string {
	if p.intent.Canary != "" {
		return p.intent.Canary
	}
	for _, d := range p.deployments {
		if name := p.intent.CanaryDeployment; name != "" && d.Name == name {
			return d.Spec.Template.Labels[label]
		}
	}
	return ""
}

func (p *planner) chooseCanary(versions *Versions, stable string) (string, error) {
	canary := p.intent.Canary
	if name := p.intent.CanaryDeployment; name != "" {
		found := false
		for _, d := range p.deployments {
			if d.Name == name {
				value := d.Spec.Template.Labels[versions.Label]
				if canary != "" && canary != value {
					return "", intentErrorf("{Canary} %s and {CanaryDeployment} %s disagree: that deployment is %s=%s; pass only one of them", canary, name, versions.Label, value)
				}
				canary, found = value, true
			}
		}
		if !found {
			return "", intentErrorf("{CanaryDeployment} %s: no such deployment behind service %s/%s (deployments: %s)", name, p.svc.namespace, p.svc.name, deploymentNames(p.deployments))
		}
	}
	if canary != "" {
		if versions.ByName[canary] == nil {
			return "", intentErrorf("{Canary} %s: service %s/%s has no such version (%s values: %s)", canary, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
		}
		if canary == stable {
			return "", intentErrorf("canary %s=%s is the stable version of service %s/%s; pick another version with {Canary}, or set the stable one with {Stable}", versions.Label, canary, p.svc.namespace, p.svc.name)
		}
		return canary, nil
	}
	var others []string
	for _, v := range versions.Values() {
		if v != stable {
			others = append(others, v)
		}
	}
	// The version the last promote retired stays deployed until someone
	// scales it down; canarying it again is a choice to make by name, and
	// beside it no other version is "the one other version" either.
	if promoted := p.lastPromoted(versions); promoted != nil && promoted.PromotedFrom != stable {
		retired := fmt.Sprintf("%s=%s of service %s/%s was promoted at %s, replacing %s=%s, which is still deployed", versions.Label, promoted.Stable, p.svc.namespace, p.svc.name, promoted.UpdatedAt.UTC().Format(time.RFC3339), versions.Label, promoted.PromotedFrom)
		if len(others) == 1 {
			return "", intentErrorf("%s and the only other version; start does not canary a retired version unasked: to canary %s=%s again, pass {Canary} %s, or deploy the new version to canary", retired, versions.Label, promoted.PromotedFrom, promoted.PromotedFrom)
		}
		return "", intentErrorf("%s; start does not choose the canary beside a retired version: pass {Canary} with one of %s", retired, strings.Join(others, ", "))
	}
	if len(others) > 1 {
		return "", intentErrorf("service %s/%s has several versions besides stable %s=%s: %s; pass {Canary} with one of them", p.svc.namespace, p.svc.name, versions.Label, stable, strings.Join(others, ", "))
	}
	return others[0], nil
}

// lastPromoted is the Service's last canary when it was promoted, with the
// version it retired still deployed; nil otherwise. The routing objects
// record the last canary only, so a promoted record is the latest event.
func (p *planner) lastPromoted(versions *Versions) *State {
	states, _ := p.states()
	for _, st := range states {
		if st.Phase == PhasePromoted && st.PromotedFrom != "" && st.VersionLabel == versions.Label && versions.ByName[st.PromotedFrom] != nil {
			return st
		}
	}
	return nil
}
