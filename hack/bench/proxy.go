package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/cert"
)

// countingProxy forwards 127.0.0.1 traffic over TLS (client-go sends no
// bearer token over plain HTTP) to the API server and counts the
// bytes of the response bodies it passes back, as the server sent them
// (gzip-compressed when the server compressed them), and the requests. The
// measured programs talk to it only in the byte-counting runs; the timed
// runs go straight to the API server.
type countingProxy struct {
	URL      string
	server   *http.Server
	bytes    atomic.Int64
	requests atomic.Int64
}

func startProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = u.Host
		},
		// The cluster's kubeconfigs skip verification of its self-signed
		// serving certificate too; the proxy talks to 127.0.0.1 only.
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // local test cluster
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 32,
		},
		FlushInterval: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cert, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	p.URL = "https://" + ln.Addr().String()
	p.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.requests.Add(1)
			rp.ServeHTTP(&countingWriter{ResponseWriter: w, n: &p.bytes}, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() { _ = p.server.ServeTLS(ln, "", "") }()
	return p, nil
}

func (p *countingProxy) Close() error { return p.server.Close() }

// counters returns the bytes and requests counted so far.
func (p *countingProxy) counters() (int64, int64) { return p.bytes.Load(), p.requests.Load() }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController flush the underlying writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// selfSignedCert is a serving certificate for 127.0.0.1; the proxy's
// kubeconfig skips verification, like the cluster's own.
func selfSignedCert() (tls.Certificate, error) {
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("canary-bench-proxy", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
