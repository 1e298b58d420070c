package routing

import (
	"fmt"
	"regexp"
	"strings"
)

func subsetsOf(spec map[string]interface{}) []interface{} {
	return asSlice(spec["subsets"])
}

// subsetSelectsVersion reports whether a subset's labels pick exactly the
// pods of one version: the version label with its value, plus any labels the
// version's pods all carry (bookinfo's subsets select on version alone, others
// add app).
func subsetSelectsVersion(subset map[string]interface{}, label string, v *Version) bool {
	lbls := asMap(subset["labels"])
	if asString(lbls[label]) != v.Value {
		return false
	}
	for k, val := range lbls {
		if k != label && v.PodLabels[k] != asString(val) {
			return false
		}
	}
	return true
}

// subsetForVersion returns the name of an existing subset that selects v.
func subsetForVersion(spec map[string]interface{}, label string, v *Version) string {
	for _, raw := range subsetsOf(spec) {
		s := asMap(raw)
		if subsetSelectsVersion(s, label, v) {
			return asString(s["name"])
		}
	}
	return ""
}

// subsetVersions maps each subset name to the version it selects.
func subsetVersions(spec map[string]interface{}, versions *Versions) map[string]string {
	out := map[string]string{}
	for _, raw := range subsetsOf(spec) {
		s := asMap(raw)
		for _, value := range versions.Values() {
			if subsetSelectsVersion(s, versions.Label, versions.ByName[value]) {
				out[asString(s["name"])] = value
			}
		}
	}
	return out
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// subsetName turns a version value into a DNS-1123 label that no other
// subset of spec uses yet.
func subsetName(spec map[string]interface{}, value string) string {
	base := notDNSLabel.ReplaceAllString(strings.ToLower(value), "-")
	base = strings.Trim(base, "-")
	if len(base) > 58 {
		base = strings.Trim(base[:58], "-")
	}
	if base == "" {
		base = "version"
	}
	taken := map[string]bool{}
	for _, raw := range subsetsOf(spec) {
		taken[asString(asMap(raw)["name"])] = true
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// ensureSubset returns the subset for v in spec, appending one when none
// selects it. added reports whether it was appended.
func ensureSubset(spec map[string]interface{}, label string, v *Version) (name string, added bool) {
	if name := subsetForVersion(spec, label, v); name != "" {
		return name, false
	}
	name = subsetName(spec, v.Value)
	spec["subsets"] = append(subsetsOf(spec), map[string]interface{}{
		"name":   name,
		"labels": map[string]interface{}{label: v.Value},
	})
	return name, true
}

// removeSubsets drops the named subsets, keeping every other one as it was.
func removeSubsets(spec map[string]interface{}, names map[string]bool) {
	subsets := subsetsOf(spec)
	if subsets == nil {
		return
	}
	kept := make([]interface{}, 0, len(subsets))
	for _, raw := range subsets {
		if !names[asString(asMap(raw)["name"])] {
			kept = append(kept, raw)
		}
	}
	if len(kept) == 0 {
		delete(spec, "subsets")
		return
	}
	spec["subsets"] = kept
}

// referencedSubsets lists the subsets of the Service that any route of the
// given specs names.
func referencedSubsets(specs []objectSpec, svc serviceRef) map[string]bool {
	out := map[string]bool{}
	for _, s := range specs {
		for _, kind := range routeKinds {
			for _, r := range routesOf(s.spec, kind) {
				for _, d := range destinationsOf(asMap(r)) {
					if svc.isHost(destinationHost(asMap(d)), s.namespace) {
						out[destinationSubset(asMap(d))] = true
					}
				}
				if mirror := asMap(asMap(r)["mirror"]); mirror != nil && svc.isHost(asString(mirror["host"]), s.namespace) {
					out[asString(mirror["subset"])] = true
				}
			}
		}
	}
	return out
}
