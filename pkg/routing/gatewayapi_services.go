package routing

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// splitTargets are the per-version Services a split sends traffic to.
type splitTargets struct{ stable, canary string }

func targetsOf(st *State) splitTargets {
	return splitTargets{stable: st.StableSubset, canary: st.CanarySubset}
}

// versionServiceOf is an existing Service that selects exactly the pods of
// one version, the Gateway API's subset: the Service's selector plus the
// version label, with the ports of the Service the routes use (bookinfo's
// reviews-v1; Istio's tcp-echo-v1 serves 9000 alone of tcp-echo's 9000 and
// 9001, the one port its routes use). Of several, the one named as start
// would name it wins, else the first by name.
func (b *gatewayAPIBackend) versionServiceOf(label, value string) *corev1.Service {
	want := map[string]string{label: value}
	for k, v := range b.snap.Service.Spec.Selector {
		want[k] = v
	}
	used := b.usedPorts()
	var found []*corev1.Service
	for i := range b.snap.Services {
		s := &b.snap.Services[i]
		if s.Name == b.svc.name || (s.Namespace != "" && s.Namespace != b.svc.namespace) {
			continue
		}
		if sameLabels(s.Spec.Selector, want) && portsCover(s.Spec.Ports, used) {
			found = append(found, s)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	for _, s := range found {
		if s.Name == b.versionServiceBase(value) {
			return s
		}
	}
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// usedPorts are the ports of the Service its live routes send traffic to:
// those of the backendRefs to the Service or to a Service selecting a
// version of it, and of parentRefs to the Service, in the routes that
// carry its traffic. With no route naming a port, every port of the
// Service: start routes them all.
func (b *gatewayAPIBackend) usedPorts() []corev1.ServicePort {
	svc := b.snap.Service
	backends := map[string]bool{b.svc.name: true}
	for _, name := range versionServices(svc, b.snap.Services) {
		backends[name] = true
	}
	numbers := map[int64]bool{}
	for _, route := range b.routes {
		if route.live == nil || gatewayAPIRouting(route.live, svc, b.snap.Services) == "" {
			continue
		}
		spec := route.liveSpec()
		for _, raw := range asSlice(spec["parentRefs"]) {
			ref := asMap(raw)
			if port, ok := asInt(ref["port"]); ok && asString(ref["kind"]) == "Service" && serviceRefNamespace(ref, route.live.GetNamespace()) == b.svc.namespace && asString(ref["name"]) == b.svc.name {
				numbers[port] = true
			}
		}
		for _, rule := range rulesOf(spec) {
			for _, raw := range backendRefsOf(asMap(rule)) {
				ref := asMap(raw)
				name, ok := b.namedService(route, ref)
				if port, has := asInt(ref["port"]); ok && has && backends[name] {
					numbers[port] = true
				}
			}
		}
	}
	if len(numbers) == 0 {
		return svc.Spec.Ports
	}
	var out []corev1.ServicePort
	for _, p := range svc.Spec.Ports {
		if numbers[int64(p.Port)] {
			out = append(out, p)
			delete(numbers, int64(p.Port))
		}
	}
	for n := range numbers {
		out = append(out, corev1.ServicePort{Port: int32(n), Protocol: corev1.ProtocolTCP})
	}
	return out
}

// servesPort reports whether the Service name of the snapshot serves
// port; a Service the plan creates serves every port of the canary's.
func (b *gatewayAPIBackend) servesPort(name string, port corev1.ServicePort) bool {
	for _, s := range b.snap.Services {
		if s.Name == name && (s.Namespace == "" || s.Namespace == b.svc.namespace) {
			return portsCover(s.Spec.Ports, []corev1.ServicePort{port})
		}
	}
	return true
}

// portsCover reports whether ports serve every port number of want, with
// its protocol, so that a backendRef's port means the same in both.
func portsCover(ports, want []corev1.ServicePort) bool {
	for _, w := range want {
		found := false
		for _, p := range ports {
			found = found || (p.Port == w.Port && protocolOf(p) == protocolOf(w))
		}
		if !found {
			return false
		}
	}
	return true
}

func protocolOf(p corev1.ServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

// versionServiceBase is the name start gives a version's Service:
// <service>-<version>, a DNS-1035 label (the Service's name already is).
func (b *gatewayAPIBackend) versionServiceBase(value string) string {
	suffix := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(value), "-"), "-")
	if suffix == "" {
		suffix = "version"
	}
	name := b.svc.name + "-" + suffix
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// ensureVersionService names the Service of a version: an existing one, or
// one planned to be created at StageSubsets, before any route names it.
// added reports whether it is planned.
func (b *gatewayAPIBackend) ensureVersionService(label string, v *Version) (name string, added bool) {
	for _, o := range b.services {
		if !o.remove && o.live == nil && asString(asMap(asMap(o.spec()["selector"]))[label]) == v.Value {
			return o.desired.GetName(), true
		}
	}
	if s := b.versionServiceOf(label, v.Value); s != nil {
		return s.Name, false
	}
	o := &object{desired: b.newVersionService(b.freeServiceName(b.versionServiceBase(v.Value)), label, v.Value), stage: StageSubsets, touched: true}
	b.services = append(b.services, o)
	return o.desired.GetName(), true
}

// freeServiceName is base, or base with a number, whichever no Service of
// the namespace has.
func (b *gatewayAPIBackend) freeServiceName(base string) string {
	taken := map[string]bool{}
	for _, s := range b.snap.Services {
		taken[s.Name] = true
	}
	for _, o := range b.services {
		taken[o.desired.GetName()] = true
	}
	name := base
	for i := 2; taken[name]; i++ {
		suffix := fmt.Sprintf("-%d", i)
		name = strings.TrimRight(base[:min(len(base), 63-len(suffix))], "-") + suffix
	}
	return name
}

// newVersionService is the Service of one version: the Service's ports
// and selector, plus the version label.
func (b *gatewayAPIBackend) newVersionService(name, label, value string) *unstructured.Unstructured {
	svc := b.snap.Service
	selector := map[string]interface{}{label: value}
	for k, v := range svc.Spec.Selector {
		selector[k] = v
	}
	ports := make([]interface{}, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		port := map[string]interface{}{"port": int64(p.Port), "protocol": string(protocolOf(p))}
		if p.Name != "" {
			port["name"] = p.Name
		}
		switch {
		case p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "":
			port["targetPort"] = p.TargetPort.StrVal
		case p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0:
			port["targetPort"] = int64(p.TargetPort.IntVal)
		}
		if p.AppProtocol != nil {
			port["appProtocol"] = *p.AppProtocol
		}
		ports = append(ports, port)
	}
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "Service",
		"spec": map[string]interface{}{"selector": selector, "ports": ports},
	}}
	u.SetName(name)
	u.SetNamespace(b.svc.namespace)
	u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue})
	return u
}

// pruneServices plans the deletion of the per-version Services start
// created that no route names any more, after the routes stop naming them.
func (b *gatewayAPIBackend) pruneServices(added []string) {
	inUse := b.servicesNamed()
	for _, name := range added {
		if inUse[name] {
			continue
		}
		for i := range b.snap.Services {
			s := &b.snap.Services[i]
			if s.Name != name || (s.Namespace != "" && s.Namespace != b.svc.namespace) {
				continue
			}
			live := serviceObject(s)
			b.services = append(b.services, &object{live: live, desired: live.DeepCopy(), stage: StagePrune, touched: true, remove: true})
		}
	}
}

// serviceObject is a Service in the unstructured form of routing objects.
func serviceObject(s *corev1.Service) *unstructured.Unstructured {
	data, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		panic(fmt.Sprintf("a Service cannot fail to convert: %v", err))
	}
	u := &unstructured.Unstructured{Object: data}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	return u
}

// restoreServices plans again the per-version Services of the running
// canary that someone deleted, so that a new weight never routes to
// nothing. Without the namespace's Services in the snapshot it cannot tell.
func (b *gatewayAPIBackend) restoreServices(active *State) {
	if b.snap.Services == nil {
		return
	}
	exists := map[string]bool{}
	for _, s := range b.snap.Services {
		exists[s.Name] = true
	}
	var restored []string
	for _, s := range []struct{ name, value string }{{active.StableSubset, active.Stable}, {active.CanarySubset, active.Canary}} {
		if s.name == "" || exists[s.name] {
			continue
		}
		b.services = append(b.services, &object{desired: b.newVersionService(s.name, active.VersionLabel, s.value), stage: StageSubsets, touched: true})
		restored = append(restored, s.name)
	}
	if len(restored) > 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("Service(s) %s/%s of the running canary were missing; they are created again", b.svc.namespace, strings.Join(restored, ", ")))
	}
}
