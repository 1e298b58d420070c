package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
)

// PrometheusProblem is what kept a request from Prometheus from being
// answered by Prometheus's HTTP API.
type PrometheusProblem string

const (
	// PrometheusUnreachable: nothing answered at the address (connection
	// refused, unknown host, TLS failure).
	PrometheusUnreachable PrometheusProblem = "unreachable"
	// PrometheusTimeout: no answer in time.
	PrometheusTimeout PrometheusProblem = "timeout"
	// PrometheusNoService: the API server's proxy found no such Service
	// (or namespace).
	PrometheusNoService PrometheusProblem = "no-service"
	// PrometheusNoEndpoints: the Service has no ready endpoint on the port,
	// or the API server could not reach it.
	PrometheusNoEndpoints PrometheusProblem = "no-endpoints"
	// PrometheusUnauthorized: credentials missing or refused (HTTP 401).
	PrometheusUnauthorized PrometheusProblem = "unauthorized"
	// PrometheusForbidden: the credentials may not do this (HTTP 403).
	PrometheusForbidden PrometheusProblem = "forbidden"
	// PrometheusNotFound: something answered, but has no Prometheus API
	// at this path (HTTP 404).
	PrometheusNotFound PrometheusProblem = "not-found"
	// PrometheusNotAPI: something answered 2xx, but not with Prometheus's
	// JSON (an HTML page, another service's API).
	PrometheusNotAPI PrometheusProblem = "not-prometheus"
	// PrometheusUnavailable: an HTTP 5xx that is not Prometheus's own
	// error answer.
	PrometheusUnavailable PrometheusProblem = "unavailable"
)

// PrometheusAddress says where Prometheus is reached: at URL, or behind
// the Service Namespace/Service:Port through the API server's proxy.
type PrometheusAddress struct {
	URL       string
	Namespace string
	Service   string
	Port      int
	// Timeout bounds each request (0: none).
	Timeout time.Duration
	// Fix, when set, says what to do about a PrometheusError in the
	// caller's terms (its flags); the error's message ends with it.
	Fix func(*PrometheusError) string
}

// Proxied says Prometheus is reached through the API server's proxy.
func (a PrometheusAddress) Proxied() bool { return a.URL == "" }

// String names Prometheus in messages; a URL's password is never shown.
func (a PrometheusAddress) String() string {
	if a.Proxied() {
		return fmt.Sprintf("service %s/%s:%d (through the API server's proxy)", a.Namespace, a.Service, a.Port)
	}
	return redactedAddress(a.URL)
}

// redactedAddress is a Prometheus URL as messages may show it: without its
// password, and not at all where it does not parse but may hold one.
func redactedAddress(address string) string {
	if u, err := url.Parse(address); err == nil {
		return u.Redacted()
	}
	if strings.Contains(address, "@") {
		return "(an address that does not parse, with credentials: not shown)"
	}
	return address
}

// PrometheusError is a request to Prometheus that Prometheus's API did not
// answer, with what is wrong, and what to do when the address says.
type PrometheusError struct {
	Problem PrometheusProblem
	Address PrometheusAddress
	// Says what is wrong, in a few words; Detail is the answer or the
	// network error it was read from.
	Says   string
	Detail string
	// FromAPIServer says the API server itself answered (its proxy's own
	// error), not Prometheus behind it.
	FromAPIServer bool
	cause         error
}

func (e *PrometheusError) Error() string {
	s := fmt.Sprintf("Prometheus at %s %s", e.Address, e.Says)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Address.Fix != nil {
		if fix := e.Address.Fix(e); fix != "" {
			s += "; " + fix
		}
	}
	return s
}

// Unwrap is the network error, if any; a timeout is not unwrapped, so that
// it is not taken for an API server's.
func (e *PrometheusError) Unwrap() error {
	if e.Problem == PrometheusTimeout {
		return nil
	}
	return e.cause
}

// explainingClient turns the answers of anything that is not Prometheus's
// HTTP API into a PrometheusError; Prometheus's own error answers (a bad
// query, HTTP 400 or 422 with its JSON) pass through unchanged.
type explainingClient struct {
	api.Client
	address PrometheusAddress
}

func (c explainingClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return resp, body, err
		}
		return resp, body, c.transportError(err)
	}
	if explained := c.answerError(resp, body); explained != nil {
		return resp, body, explained
	}
	return resp, body, nil
}

func (c explainingClient) transportError(err error) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		says := "did not answer in time"
		if c.address.Timeout > 0 {
			says = fmt.Sprintf("did not answer within %s", c.address.Timeout)
		}
		return &PrometheusError{Problem: PrometheusTimeout, Address: c.address, Says: says, cause: err}
	}
	says := "cannot be reached"
	if c.address.Proxied() {
		says = "cannot be reached: the API server does not answer"
	}
	return &PrometheusError{Problem: PrometheusUnreachable, Address: c.address, Says: says, Detail: lastPart(err), cause: err}
}

// lastPart is the end of a network error, without the repeated URL.
func lastPart(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err.Error()
	}
	return err.Error()
}

// kubeStatus is an API server's error answer (its proxy's own errors).
type kubeStatus struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// promAnswer is the envelope of every Prometheus API answer.
type promAnswer struct {
	Status string `json:"status"`
}

func (c explainingClient) answerError(resp *http.Response, body []byte) error {
	code := resp.StatusCode
	var status kubeStatus
	fromAPIServer := c.address.Proxied() && json.Unmarshal(body, &status) == nil && status.Kind == "Status"
	var answer promAnswer
	isProm := json.Unmarshal(body, &answer) == nil && (answer.Status == "success" || answer.Status == "error")
	path := resp.Request.URL.Path
	if i := strings.Index(path, "/api/v1/"); i >= 0 && !strings.HasPrefix(path, "/api/v1/namespaces/") {
		path = path[i:]
	} else if i := strings.LastIndex(path, "/proxy/"); i >= 0 {
		path = path[i+len("/proxy"):]
	}
	e := &PrometheusError{Address: c.address, Detail: fmt.Sprintf("HTTP %d for %s", code, path), FromAPIServer: fromAPIServer}
	detail := func(text string) {
		if text != "" {
			e.Detail += ": " + text
		}
	}
	switch {
	case code/100 == 2 && isProm, code == http.StatusNoContent:
		return nil
	case code/100 == 2:
		e.Problem, e.Says = PrometheusNotAPI, "answered, but not as Prometheus's HTTP API"
		what := resp.Header.Get("Content-Type")
		if what == "" {
			what = "no content type"
		}
		detail(what + ", " + excerpt(body))
	case isProm && code != http.StatusUnauthorized && code != http.StatusForbidden:
		// Prometheus's own error answer: a bad query, a query timeout.
		return nil
	case code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented:
		// client_golang asks again with GET.
		return nil
	case code == http.StatusUnauthorized:
		e.Problem = PrometheusUnauthorized
		e.Says = "asks for credentials"
		if fromAPIServer {
			e.Says = "is behind an API server that refused the kubeconfig's credentials"
		}
		detail(firstOf(status.Message, excerpt(body)))
	case code == http.StatusForbidden:
		e.Problem = PrometheusForbidden
		e.Says = "refused the request"
		if fromAPIServer {
			e.Says = fmt.Sprintf("is out of reach: the API server does not allow you to get services/proxy in namespace %s", c.address.Namespace)
		}
		detail(firstOf(status.Message, excerpt(body)))
	case code == http.StatusNotFound && fromAPIServer:
		e.Problem = PrometheusNoService
		e.Says = fmt.Sprintf("does not exist: the API server has no service %s/%s", c.address.Namespace, c.address.Service)
		detail(status.Message)
	case code == http.StatusNotFound:
		e.Problem, e.Says = PrometheusNotFound, "has no Prometheus API: nothing at this path"
		detail(excerpt(body))
	case fromAPIServer && code/100 == 5:
		e.Problem = PrometheusNoEndpoints
		e.Says = fmt.Sprintf("is not answering: the API server found no ready endpoint of service %s/%s on port %d, or could not reach it", c.address.Namespace, c.address.Service, c.address.Port)
		detail(status.Message)
	default:
		e.Problem, e.Says = PrometheusUnavailable, "answered with an error, not Prometheus's API"
		detail(excerpt(body))
	}
	return e
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// NewExplainingClient is NewClient for the Prometheus at, reached at
// address, whose answers that are not Prometheus's API become
// PrometheusErrors saying what is wrong.
func NewExplainingClient(address string, httpClient *http.Client, at PrometheusAddress) (api.Client, error) {
	c, err := NewClient(address, httpClient)
	if err != nil {
		return nil, err
	}
	return explainingClient{Client: c, address: at}, nil
}
