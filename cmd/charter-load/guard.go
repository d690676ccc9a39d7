package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// errNotLoopback is returned for a target address that is not on this
// machine while -allow-remote is off.
var errNotLoopback = errors.New("refusing a non-loopback address (127.0.0.0/8, ::1, localhost); pass -allow-remote to override")

// baseURL turns -addr ("127.0.0.1:8181", "[::1]:8181", "localhost:8181" or
// "http://127.0.0.1:8181") into a base URL and checks the host is loopback
// unless allowRemote.
func baseURL(addr string, allowRemote bool) (string, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-addr %q: %w", addr, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("-addr %q: only http is supported", addr)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("-addr %q: want host:port", addr)
	}
	if !allowRemote && !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("-addr %q: %w", addr, errNotLoopback)
	}
	return "http://" + u.Host, nil
}

// isLoopbackHost accepts localhost and loopback IP literals only; other
// names are refused rather than resolved.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly is a net.Dialer Control that refuses to connect anywhere but
// a loopback address, whatever a name resolved to. It is the second line of
// the guard, behind baseURL.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dial %s: %w", address, errNotLoopback)
	}
	return nil
}
