package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// ForwardPort forwards a free 127.0.0.1 port to port of a pod through the
// API server (pods/portforward), as kubectl port-forward does, until ctx
// ends, and returns the local address. Connections arrive on the pod's own
// loopback, where servers that answer only local callers (istiod's debug
// endpoints) answer.
func (c *Clients) ForwardPort(ctx context.Context, namespace, pod string, port int32) (string, error) {
	if c.Config == nil {
		return "", fmt.Errorf("no connection settings to forward a port with")
	}
	transport, upgrader, err := spdy.RoundTripperFor(c.Config)
	if err != nil {
		return "", err
	}
	url := c.Core.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	ready := make(chan struct{})
	forwarder, err := portforward.NewOnAddressesWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(int(port))}, ready, io.Discard, io.Discard)
	if err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- forwarder.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("the port-forward ended at once")
		}
		return "", err
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ports, err := forwarder.GetPorts()
	if err != nil || len(ports) != 1 {
		return "", fmt.Errorf("the port-forward to pod %s/%s has no local port: %v", namespace, pod, err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))), nil
}
