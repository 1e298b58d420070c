// Command kubelet stands in for the kubelet of the local cluster's one node
// (hack/cluster.sh) where the API server needs one: port forwarding. It
// serves POST /portForward/NAMESPACE/POD over HTTPS with SPDY streams, as a
// kubelet does, and connects each forwarded port to 127.0.0.1:PORT: the
// "pods" of this cluster are processes on loopback (see hack/podnet), and a
// real kubelet also enters the pod's network namespace and dials localhost.
//
//	kubelet -listen 127.0.0.1:PORT
//
// The API server reaches it through podnet at the node's address; it does
// not verify the kubelet's certificate without --kubelet-certificate-authority,
// so a fresh self-signed one does.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/util/cert"
)

// portForwardProtocol is the one version of the port-forward protocol there
// is: per forwarded connection, an error stream and a data stream sharing a
// requestID, each naming the port.
const portForwardProtocol = "portforward.k8s.io"

func main() {
	listen := flag.String("listen", "127.0.0.1:10250", "address to serve on (loopback only)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("kubelet: -listen %q: give a 127.0.0.1 address", *listen)
	}
	cert, err := selfSigned()
	if err != nil {
		log.Fatalf("kubelet: %v", err)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("kubelet: serving port forwarding on https://%s", *listen)
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /portForward/{namespace}/{pod}", portForward)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// portForward upgrades the request to SPDY and serves its streams until the
// connection closes.
func portForward(w http.ResponseWriter, req *http.Request) {
	if _, err := httpstream.Handshake(req, w, []string{portForwardProtocol}); err != nil {
		return // Handshake has answered
	}
	pod := req.PathValue("namespace") + "/" + req.PathValue("pod")
	pairs := &streamPairs{errors: map[string]httpstream.Stream{}}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, replySent <-chan struct{}) error {
		go func() {
			<-replySent
			pairs.serve(pod, s)
		}()
		return nil
	})
	if conn == nil {
		return // UpgradeResponse has answered
	}
	defer conn.Close()
	conn.SetIdleTimeout(10 * time.Minute)
	<-conn.CloseChan()
}

// streamPairs keeps each request's error stream until its data stream is done.
type streamPairs struct {
	mu     sync.Mutex
	errors map[string]httpstream.Stream
}

func (p *streamPairs) serve(pod string, s httpstream.Stream) {
	id := s.Headers().Get("requestID")
	switch s.Headers().Get("streamType") {
	case "error":
		p.mu.Lock()
		p.errors[id] = s
		p.mu.Unlock()
	case "data":
		err := forward(s)
		p.mu.Lock()
		errStream := p.errors[id]
		delete(p.errors, id)
		p.mu.Unlock()
		if errStream != nil {
			if err != nil {
				_, _ = fmt.Fprintf(errStream, "pod %s: %v", pod, err)
			}
			_ = errStream.Close()
		}
	default:
		_ = s.Reset()
	}
}

// forward copies a data stream to and from 127.0.0.1 at the stream's port.
func forward(s httpstream.Stream) error {
	defer s.Close()
	port, err := strconv.ParseUint(s.Headers().Get("port"), 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", s.Headers().Get("port"))
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, s); done <- struct{}{} }()
	go func() { _, _ = io.Copy(s, conn); done <- struct{}{} }()
	<-done
	return nil
}

// selfSigned makes a serving certificate for 127.0.0.1 and the node's name.
func selfSigned() (tls.Certificate, error) {
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("local-node", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
