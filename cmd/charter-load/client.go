package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// newClient builds the one HTTP client of a run: keep-alive connections, at
// least conns of them kept idle per host, no proxy, no compression, and a
// timeout on every request. Unless allowRemote, it only dials loopback.
func newClient(conns int, timeout time.Duration, allowRemote bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowRemote {
		d.Control = loopbackOnly
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect is an answer to count, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxBody bounds how much of one answer is read; the rest is dropped with
// the connection.
const maxBody = 16 << 20

// send performs one request and reads its body to the end so the connection
// goes back to the pool. buf is the worker's scratch buffer for bodies that
// are inspected (batch answers).
func send(ctx context.Context, c *http.Client, t *target, r *request, buf *bytes.Buffer) outcome {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return outcome{err: err}
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	o := outcome{status: resp.StatusCode, succeeded: t.success(resp.StatusCode)}
	rd := io.LimitReader(resp.Body, maxBody)
	if o.succeeded && t.name == targetBatch {
		buf.Reset()
		_, err = buf.ReadFrom(rd)
		if err == nil && !batchBodyOK(buf.Bytes(), t.perReq) {
			o.badBody, o.succeeded = true, false
		}
	} else {
		_, err = io.Copy(io.Discard, rd)
	}
	if err != nil {
		return outcome{err: err}
	}
	return o
}
