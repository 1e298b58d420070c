// Command podnet is the pod network of the local e2e cluster (hack/cluster.sh).
//
// The cluster has no nodes: the processes that stand in for pods (istiod, ...)
// listen on 127.0.0.1, each on a port of its own, and the API objects that
// describe them (Pod status, EndpointSlice) carry made-up pod IPs from a pod
// CIDR, because the kube-apiserver refuses to proxy to loopback endpoints. A
// real cluster's API server reaches pods through an egress proxy
// (konnectivity); podnet is that proxy for this fake cluster. kube-apiserver
// gets an EgressSelectorConfiguration whose "cluster" selection uses
// HTTPConnect over the unix socket podnet listens on:
//
//	podnet -socket DIR/podnet.sock -cidr 10.244.0.0/16
//
// It answers `CONNECT IP:PORT HTTP/1.1` for an IP inside the pod CIDR by
// dialing 127.0.0.1:PORT (every "pod IP" lives on loopback), replies
// `HTTP/1.1 200 Connection established`, then copies bytes both ways. Anything
// else is refused with a 4xx status and the reason in the body: another
// method, a host name, an IP outside the CIDR, a bad port. A refused dial gets
// 502. It never connects anywhere but 127.0.0.1.
//
// SIGTERM or SIGINT closes the socket (removing its file) and ends podnet;
// tunnels still open are cut.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Bounds: a client that does not finish its CONNECT request in time, or a
// loopback port that does not accept in time, ends the connection.
const (
	requestTimeout = 10 * time.Second
	dialTimeout    = 5 * time.Second
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("podnet: ")
	socket := flag.String("socket", "", "unix socket to listen on (required)")
	cidr := flag.String("cidr", "10.244.0.0/16", "pod CIDR: CONNECT is allowed to IPs inside it only")
	flag.Parse()
	if *socket == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	prefix, err := netip.ParsePrefix(*cidr)
	if err != nil {
		log.Fatalf("-cidr: %v", err)
	}
	if err := removeStaleSocket(*socket); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("unix", *socket)
	if err != nil {
		log.Fatal(err)
	}
	// Only this user (the one running kube-apiserver) may use the tunnel.
	if err := os.Chmod(*socket, 0o600); err != nil {
		ln.Close()
		log.Fatal(err)
	}
	p := &proxy{cidr: prefix.Masked(), logf: log.Printf}
	log.Printf("listening on %s for CONNECT to %s (dialing 127.0.0.1)", *socket, p.cidr)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		log.Printf("got %v; closing %s", s, *socket)
		ln.Close() // removes the socket file
	}()
	if err := p.serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Fatal(err)
	}
}

// removeStaleSocket removes a socket file left by a podnet that was killed,
// so that a restart can bind again; any other kind of file is an error.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	return os.Remove(path)
}

// proxy answers CONNECT requests for IPs in cidr by dialing 127.0.0.1.
type proxy struct {
	cidr netip.Prefix
	logf func(format string, args ...any)
	// dial is net.DialTimeout unless a test replaces it; it is only ever
	// called with network "tcp" and address 127.0.0.1:PORT.
	dial func(network, address string, timeout time.Duration) (net.Conn, error)
}

func (p *proxy) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go p.handle(c)
	}
}

// refusal is a CONNECT that is answered with an error status.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

// target checks a CONNECT request and returns the loopback address it maps to.
func (p *proxy) target(req *http.Request) (string, error) {
	if req.Method != http.MethodConnect {
		return "", &refusal{http.StatusMethodNotAllowed, fmt.Sprintf("only CONNECT is supported, not %s", req.Method)}
	}
	// For CONNECT, the request target is the authority form host:port.
	host, port, err := net.SplitHostPort(req.RequestURI)
	if err != nil {
		return "", &refusal{http.StatusBadRequest, fmt.Sprintf("CONNECT target %q is not IP:PORT: %v", req.RequestURI, err)}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", &refusal{http.StatusBadRequest, fmt.Sprintf("CONNECT target %q: %q is not an IP address (there is no DNS in the pod network)", req.RequestURI, host)}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return "", &refusal{http.StatusBadRequest, fmt.Sprintf("CONNECT target %q: bad port %q", req.RequestURI, port)}
	}
	if ip = ip.Unmap(); !p.cidr.Contains(ip) {
		return "", &refusal{http.StatusForbidden, fmt.Sprintf("%s is outside the pod network %s", ip, p.cidr)}
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	br := bufio.NewReader(io.LimitReader(c, 1<<20))
	req, err := http.ReadRequest(br)
	if err != nil {
		p.refuse(c, "?", &refusal{http.StatusBadRequest, fmt.Sprintf("malformed request: %v", err)})
		return
	}
	addr, err := p.target(req)
	var r *refusal
	if errors.As(err, &r) {
		p.refuse(c, req.Method+" "+req.RequestURI, r)
		return
	}
	dial := p.dial
	if dial == nil {
		dial = net.DialTimeout
	}
	up, err := dial("tcp", addr, dialTimeout)
	if err != nil {
		p.refuse(c, req.Method+" "+req.RequestURI, &refusal{http.StatusBadGateway, err.Error()})
		return
	}
	defer up.Close()
	c.SetReadDeadline(time.Time{})
	// Logged before the client hears 200, so that the log line exists by the
	// time anyone acts on the tunnel (a test may stop podnet right after).
	p.logf("CONNECT %s -> %s", req.RequestURI, addr)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}

	// Bytes the client sent after its request (a pipelined first request)
	// are still in br: they go first. Reading from br goes on reading c.
	// Each direction half-closes the other side when it ends, so that
	// request/response protocols see EOF; both ends close when both are done.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(up, io.MultiReader(buffered(br), c))
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		io.Copy(c, up)
		closeWrite(c)
	}()
	wg.Wait()
}

// buffered returns what br has already read and not handed out.
func buffered(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return bytes.NewReader(bytes.Clone(b))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func (p *proxy) refuse(c net.Conn, what string, r *refusal) {
	p.logf("refused %s: %d %s", what, r.status, r.reason)
	body := r.reason + "\n"
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		r.status, http.StatusText(r.status), len(body), body)
}
