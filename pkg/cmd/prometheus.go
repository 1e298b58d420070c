package cmd

import (
	"fmt"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
)

// prometheusFix says what to do about a Prometheus that could not be
// queried, naming the flags that fix it.
func prometheusFix(e *analysis.PrometheusError) string {
	at := e.Address
	proxied := at.Proxied()
	orURL := "or give Prometheus's own address with --prometheus-url"
	baseURL := "--prometheus-url must be Prometheus's base address, where its web UI is served (http://HOST:9090, with its --web.route-prefix if it has one, without /graph or /api/v1)"
	otherPort := fmt.Sprintf("give the port of Prometheus's HTTP API with --prometheus-port (9090 in Istio's addon) or its Service with --prometheus-namespace and --prometheus-service, %s", orURL)
	switch e.Problem {
	case analysis.PrometheusUnreachable:
		if proxied {
			return "check the kubeconfig's cluster and that it answers (kubectl cluster-info), " + orURL
		}
		return "check --prometheus-url; for a Prometheus in the cluster, leave --prometheus-url out to reach it through the API server, or kubectl port-forward to it first"
	case analysis.PrometheusTimeout:
		return "allow more time per request with --request-timeout (30s unless given) or analyse a shorter --window, and check that Prometheus is not overloaded"
	case analysis.PrometheusNoService:
		return fmt.Sprintf("give the namespace and name of Prometheus's Service with --prometheus-namespace and --prometheus-service (kubectl get services -A | grep prometheus finds it), %s", orURL)
	case analysis.PrometheusNoEndpoints:
		return fmt.Sprintf("check that Prometheus's pods are ready (kubectl get pods -n %s) and that --prometheus-port %d is the Service's port of Prometheus's HTTP API (9090 in Istio's addon), %s", at.Namespace, at.Port, orURL)
	case analysis.PrometheusUnauthorized:
		switch {
		case e.FromAPIServer:
			return "the kubeconfig's credentials were refused: log in to the cluster again (kubectl auth whoami tells)"
		case proxied:
			return "the API server's proxy does not pass credentials on to Prometheus: kubectl port-forward to it and give --prometheus-url with the credentials (https://USER:PASSWORD@HOST:PORT)"
		}
		return "give the credentials in --prometheus-url (https://USER:PASSWORD@HOST:PORT)"
	case analysis.PrometheusForbidden:
		if e.FromAPIServer {
			return fmt.Sprintf("ask for get on services/proxy in namespace %s (README.md, RBAC), %s", at.Namespace, orURL)
		}
		return "give credentials in --prometheus-url that may query it (https://USER:PASSWORD@HOST:PORT)"
	case analysis.PrometheusNotFound, analysis.PrometheusNotAPI:
		if proxied {
			return otherPort
		}
		return baseURL
	}
	return "Prometheus may be starting or overloaded: try again, " + orURL
}
