package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// start serves a proxy for 10.244.0.0/16 on a unix socket and returns the
// socket's path and the addresses the proxy dialed.
func start(t *testing.T) (string, func() []string) {
	t.Helper()
	// Short: a unix socket path has at most 107 bytes, t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dialed []string
	p := &proxy{
		cidr: netip.MustParsePrefix("10.244.0.0/16"),
		logf: t.Logf,
		dial: func(network, address string, timeout time.Duration) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, network+" "+address)
			mu.Unlock()
			return net.DialTimeout(network, address, timeout)
		},
	}
	done := make(chan error, 1)
	go func() { done <- p.serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil && !strings.Contains(err.Error(), "use of closed") {
			t.Errorf("serve: %v", err)
		}
	})
	return sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), dialed...)
	}
}

// connect sends request on a new connection to the socket, reads the
// response head the way kube-apiserver's egress dialer does, and returns the
// connection (positioned after the head) with the response.
func connect(t *testing.T, sock, request string) (net.Conn, *http.Response, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", request, err)
	}
	return c, res, br
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The API server's service proxy, as konnectivity would carry it: CONNECT to
// a pod IP, then plain HTTP to the pod's port, which here is a loopback port.
func TestConnectReachesLoopback(t *testing.T) {
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the pod: %s %s", r.Method, r.URL.Path)
	}))
	defer pod.Close()
	sock, dialed := start(t)

	p := port(t, pod.Listener.Addr().String())
	// What kube-apiserver v1.37 writes (egressselector.tunnelHTTPConnect).
	c, res, br := connect(t, sock, "CONNECT 10.244.0.2:"+p+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %s, want 200", res.Status)
	}
	// The API server refuses the tunnel if anything follows the head.
	if br.Buffered() != 0 {
		t.Fatalf("%d bytes after the response head", br.Buffered())
	}
	fmt.Fprintf(c, "GET /debug/syncz HTTP/1.1\r\nHost: 10.244.0.2:%s\r\nConnection: close\r\n\r\n", p)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if got, want := string(body), "hello from the pod: GET /debug/syncz"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got, want := strings.Join(dialed(), ","), "tcp 127.0.0.1:"+p; got != want {
		t.Errorf("dialed %q, want %q", got, want)
	}
}

// Bytes sent right behind the CONNECT request, before the answer, are not
// lost, and a half-close reaches the other side.
func TestConnectPipelinedAndHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		fmt.Fprintf(c, "got %q", b)
	}()
	sock, _ := start(t)
	c, res, br := connect(t, sock, "CONNECT 10.244.255.254:"+port(t, ln.Addr().String())+" HTTP/1.1\r\nHost: x\r\n\r\nping")
	if res.StatusCode != 200 {
		t.Fatalf("status %s, want 200", res.Status)
	}
	io.WriteString(c, " pong")
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `got "ping pong"`; got != want {
		t.Errorf("echo %q, want %q", got, want)
	}
}

func TestRefused(t *testing.T) {
	// A loopback listener that nothing may reach through a refused request.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := port(t, ln.Addr().String())
	// A port nothing listens on.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := port(t, closed.Addr().String())
	closed.Close()

	for _, tc := range []struct {
		name, request string
		status        int
		reason        string
		dials         bool
	}{
		{"outside the CIDR", "CONNECT 10.245.0.2:" + p + " HTTP/1.1\r\n\r\n", 403, "10.245.0.2 is outside the pod network 10.244.0.0/16", false},
		{"loopback itself", "CONNECT 127.0.0.1:" + p + " HTTP/1.1\r\n\r\n", 403, "outside the pod network", false},
		{"IPv6", "CONNECT [::1]:" + p + " HTTP/1.1\r\n\r\n", 403, "::1 is outside the pod network", false},
		{"host name", "CONNECT localhost:" + p + " HTTP/1.1\r\n\r\n", 400, `"localhost" is not an IP address`, false},
		{"no port", "CONNECT 10.244.0.2 HTTP/1.1\r\n\r\n", 400, "is not IP:PORT", false},
		{"port 0", "CONNECT 10.244.0.2:0 HTTP/1.1\r\n\r\n", 400, `bad port "0"`, false},
		{"port too big", "CONNECT 10.244.0.2:65536 HTTP/1.1\r\n\r\n", 400, `bad port "65536"`, false},
		{"not CONNECT", "GET http://10.244.0.2:" + p + "/ HTTP/1.1\r\nHost: 10.244.0.2\r\n\r\n", 405, "only CONNECT is supported, not GET", false},
		{"not HTTP", "hello\r\n\r\n", 400, "malformed request", false},
		{"nothing listens", "CONNECT 10.244.0.2:" + closedPort + " HTTP/1.1\r\n\r\n", 502, "dial tcp 127.0.0.1:" + closedPort + ": connect: connection refused", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, dialed := start(t)
			_, res, _ := connect(t, sock, tc.request)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Errorf("status %s, want %d", res.Status, tc.status)
			}
			if !strings.Contains(string(body), tc.reason) {
				t.Errorf("body %q does not say %q", body, tc.reason)
			}
			if d := dialed(); tc.dials != (len(d) > 0) {
				t.Errorf("dialed %q", d)
			}
		})
	}
}

func TestRemoveStaleSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	if err := removeStaleSocket(sock); err != nil {
		t.Errorf("no file: %v", err)
	}

	// A socket someone listens on is left alone.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := removeStaleSocket(sock); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("live socket: %v", err)
	}
	// A dead one (the listener was killed) is removed.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := removeStaleSocket(sock); err != nil {
		t.Errorf("stale socket: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("stale socket still there: %v", err)
	}

	// Any other file is not ours to remove.
	os.WriteFile(sock, nil, 0o600)
	if err := removeStaleSocket(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
}

// TestMain lets the test binary run as podnet itself (see TestCommand).
func TestMain(m *testing.M) {
	if os.Getenv("PODNET_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The command as cluster.sh runs it: listens on -socket (mode 0600), serves,
// and on SIGTERM removes the socket and exits 0.
func TestCommand(t *testing.T) {
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer pod.Close()
	dir, err := os.MkdirTemp("", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "podnet.sock")

	cmd := exec.Command(os.Args[0], "-socket", sock, "-cidr", "10.244.0.0/16")
	cmd.Env = append(os.Environ(), "PODNET_TEST_MAIN=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Lstat(sock); err == nil {
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket after 10s; output:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, res, _ := connect(t, sock, "CONNECT 10.244.0.9:"+port(t, pod.Listener.Addr().String())+" HTTP/1.1\r\n\r\n")
	if res.StatusCode != 200 {
		t.Errorf("status %s, want 200", res.Status)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; output:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM; output:\n%s", out.String())
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if !strings.Contains(out.String(), "CONNECT 10.244.0.9:") {
		t.Errorf("the tunnel is not logged:\n%s", out.String())
	}
}
