package api

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Oversized bodies: about the 1.2 MB of the defect report, and one of
// 3 MiB. net/http itself reads up to 256 KiB of a body that a handler left
// unread, so only a body more than that over the limit shows the defect
// when it has no Content-Length.
var (
	oversizedBody = bytes.Repeat([]byte("x"), MaxBodyBytes+MaxBodyBytes/5)
	bigBody       = bytes.Repeat([]byte("x"), 3*MaxBodyBytes)
)

// rawPost sends a POST with body over a fresh TCP connection the way a
// simple client does: the whole body first, and only then the response is
// read. With chunked, the body is sent with chunked transfer encoding
// (no length known in advance). With slow, it is written in 64 KiB pieces
// with a pause of 600 ms at MaxBodyBytes and another at 1.5 times that, so
// that the client is still writing well after the server answered (net/http
// closes a connection 500 ms after its answer when the body was not read to
// its end, and reads up to 256 KiB of it first when it has no length). It
// returns the status and the error code of the answer, or an error when the
// connection broke (a reset while writing or reading).
func rawPost(addr, path string, body []byte, chunked, slow bool) (int, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	hdr := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n"
	if chunked {
		hdr += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		hdr += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	}
	if _, err := io.WriteString(conn, hdr); err != nil {
		return 0, "", fmt.Errorf("writing the header: %w", err)
	}
	piece := len(body)
	if slow {
		piece = 64 << 10
	}
	pauseAt := []int{MaxBodyBytes, MaxBodyBytes + MaxBodyBytes/2}
	for off := 0; off < len(body); off += piece {
		p := body[off:min(off+piece, len(body))]
		var out []byte
		if chunked {
			out = fmt.Appendf(nil, "%x\r\n%s\r\n", len(p), p)
		} else {
			out = p
		}
		if _, err := conn.Write(out); err != nil {
			return 0, "", fmt.Errorf("writing the body at byte %d: %w", off, err)
		}
		for _, at := range pauseAt {
			if slow && off < at && off+len(p) >= at {
				time.Sleep(600 * time.Millisecond)
			}
		}
	}
	if chunked {
		if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
			return 0, "", fmt.Errorf("writing the last chunk: %w", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", fmt.Errorf("reading the response: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("reading the response body: %w", err)
	}
	return resp.StatusCode, errorCode(b), nil
}

// TestBodyTooLargeReachesClient (defect 6): a client that writes a whole
// 1.2 MB (or 3 MiB) body before it reads gets the 413, not a connection
// reset, with and without a Content-Length, whether it writes fast or
// slowly. The server
// reads and discards a bounded amount of the rest of the body before it
// answers, so that it never closes a connection holding unread data (which
// makes the kernel send a reset).
func TestBodyTooLargeReachesClient(t *testing.T) {
	t.Parallel() // seconds of waiting each, on separate servers
	h := NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{WebhookSecret: []byte("s")})
	// A deadline no loaded test machine reaches: this test is about the
	// drain, TestBodyTooLargeBounded about its deadline.
	h.(*handler).drainTimeout = time.Minute
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	const rounds = 50
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, 5)
	for i := range rounds {
		path := []string{"/v1/check", "/v1/explain", "/v1/reconcile"}[i%3]
		chunked, slow, body := i%2 == 1, i%4 >= 2, oversizedBody
		if i%8 >= 4 {
			body = bigBody
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			status, code, err := rawPost(addr, path, body, chunked, slow)
			if err == nil && status == http.StatusRequestEntityTooLarge && code == codeBodyTooLarge {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fmt.Sprintf("round %d %s (%d bytes, chunked %v, slow %v): status %d code %q err %v", i, path, len(body), chunked, slow, status, code, err))
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d rounds did not get the 413:\n%s", len(failures), rounds, strings.Join(failures, "\n"))
	}
}

// TestBodyTooLargePythonClient: Python's urllib, the client of the defect
// report, writes the whole body before it reads; it gets the 413.
func TestBodyTooLargePythonClient(t *testing.T) {
	t.Parallel() // seconds of waiting each, on separate servers
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	h := NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{})
	h.(*handler).drainTimeout = time.Minute
	srv := httptest.NewServer(h)
	defer srv.Close()
	const script = `
import sys, urllib.request, urllib.error
url, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    req = urllib.request.Request(url, data=b"x" * 1200000, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=20)
        print("round", i, "no error")
        sys.exit(1)
    except urllib.error.HTTPError as e:
        body = e.read()
        if e.code != 413 or b"body_too_large" not in body:
            print("round", i, e.code, body)
            sys.exit(1)
    except Exception as e:
        print("round", i, type(e).__name__, e)
        sys.exit(1)
`
	out, err := exec.Command(python, "-c", script, srv.URL+"/v1/check", "10").CombinedOutput()
	if err != nil {
		t.Errorf("python urllib: %v\n%s", err, out)
	}
}

// TestBodyTooLargeBounded: the drain of an oversized body is bounded. A
// body declared longer than maxDrainBytes, or one whose client waits for
// "100 Continue", is answered 413 at once, without reading it, and the
// connection is closed; a client that stalls is answered once the drain's
// deadline has passed.
func TestBodyTooLargeBounded(t *testing.T) {
	t.Parallel() // seconds of waiting each, on separate servers
	const drainTimeout = time.Second
	h := NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{})
	h.(*handler).drainTimeout = drainTimeout
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, c := range []struct {
		name    string
		header  string
		send    int // body bytes sent before reading
		minWait time.Duration
	}{
		{name: "declared over the drain bound", header: fmt.Sprintf("Content-Length: %d\r\n", maxDrainBytes+1)},
		{name: "expects 100 Continue", header: fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n", 2*MaxBodyBytes)},
		{name: "stalls", header: fmt.Sprintf("Content-Length: %d\r\n", 2*MaxBodyBytes), send: MaxBodyBytes + 1000, minWait: drainTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			req := "POST /v1/check HTTP/1.1\r\nHost: " + addr + "\r\n" + c.header + "\r\n"
			if _, err := io.WriteString(conn, req+strings.Repeat("x", c.send)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(b) != codeBodyTooLarge || !resp.Close {
				t.Errorf("%d %q (close %v), want 413 body_too_large and the connection closed", resp.StatusCode, b, resp.Close)
			}
			if took < c.minWait || took > c.minWait+5*time.Second {
				t.Errorf("answered after %v, want %v (+ at most 5s)", took, c.minWait)
			}
		})
	}
}
