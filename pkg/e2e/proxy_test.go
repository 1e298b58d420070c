//go:build e2e

package e2e

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// proxyHandler decides what becomes of one request on its way to the API
// server: forward.ServeHTTP(w, r) passes it on; a handler may also hold it,
// answer it itself, or drop the connection (panic(http.ErrAbortHandler)).
type proxyHandler func(w http.ResponseWriter, r *http.Request, forward http.Handler)

// startProxy starts a TLS reverse proxy on 127.0.0.1 in front of c's API
// server that sends every request through handle, and returns a kubeconfig
// with c's admin credentials that goes through it. The proxy serves
// httptest's in-process self-signed certificate (the kubeconfig skips
// verification) and talks TLS to the API server without verifying it, as
// c's kubeconfig does. It stops when the test ends.
func startProxy(t *testing.T, c *cluster, handle proxyHandler) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	require.NoError(t, err)
	var server string
	for _, cl := range cfg.Clusters {
		server = cl.Server
	}
	target, err := url.Parse(server)
	require.NoError(t, err)
	forward := httputil.NewSingleHostReverseProxy(target)
	transport := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	forward.Transport = transport
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, forward)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(transport.CloseIdleConnections)
	t.Cleanup(srv.Close)
	return editKubeconfig(t, c.kubeconfig, func(cfg *clientcmdapi.Config) {
		for _, cl := range cfg.Clusters {
			cl.Server = srv.URL
			cl.InsecureSkipTLSVerify = true
			cl.CertificateAuthorityData = nil
		}
	})
}

// delayingProxy starts a proxy that holds each request for delay(request)
// before passing it on.
func delayingProxy(t *testing.T, c *cluster, delay func(*http.Request) time.Duration) string {
	t.Helper()
	return startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
		if d := delay(r); d > 0 {
			time.Sleep(d)
		}
		forward.ServeHTTP(w, r)
	})
}

var routingPath = regexp.MustCompile(`^/apis/networking\.istio\.io/[^/]+/namespaces/[^/]+/(virtualservices|destinationrules)(/[^/]+)?$`)

// routingWrite names a request that changes a stored VirtualService or
// DestinationRule, as "PUT virtualservices/reviews" or "POST
// destinationrules", or returns "" for any other request: reads, server dry
// runs (dryRun=All, which start sends before its real writes), and
// SelfSubjectAccessReviews.
func routingWrite(r *http.Request) string {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return ""
	}
	m := routingPath.FindStringSubmatch(r.URL.Path)
	if m == nil || len(r.URL.Query()["dryRun"]) > 0 {
		return ""
	}
	return r.Method + " " + m[1] + m[2]
}

// writeKind is "VirtualService" or "DestinationRule" for a routingWrite.
func writeKind(write string) string {
	if strings.Contains(write, "virtualservices") {
		return "VirtualService"
	}
	return "DestinationRule"
}
