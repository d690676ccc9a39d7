// Command charter-load measures a running Charter sidecar over HTTP on this
// machine: single checks, batch checks or /healthz, in a closed loop of N
// connections or an open loop at a fixed rate whose latencies run from each
// request's intended send time, so queueing is not hidden. Each run also
// measures /healthz the same way, as the ceiling of HTTP on the machine, and
// prints the ratio; only loopback addresses are accepted unless -allow-remote.
//
// Usage:
//
//	go run ./cmd/charter serve &
//	go run ./cmd/charter-load -target check -c 32 -d 10s
//	go run ./cmd/charter-load -target check -rate 5000 -d 10s
//	go run ./cmd/charter-load -target batch -batch 100 -c 8 -json
//	go run ./cmd/charter-load -questions questions.txt -addr 127.0.0.1:8181
//
// Flags:
//
//	-addr host:port   sidecar address (default 127.0.0.1:8181); loopback only
//	-target T         check (GET .../permissions/{action}, 200 allowed and
//	                  404 denied both count as successes), batch (POST
//	                  /v1/check) or healthz
//	-c N              closed loop: connections (default 32)
//	-rate R           open loop: requests per second (default 0: closed loop)
//	-d, -warmup       measured duration (10s) after a warm-up (2s), per phase
//	-max-inflight N   open loop: most requests in flight (default 2048)
//	-late D           open loop: a send this far behind schedule is late (1ms)
//	-batch N          checks per batch request (default 100)
//	-users, -docs, -actions, -seed, -pool, -user-format, -doc-format
//	                  the generated question mix (user-%d, documents/d%d)
//	-questions FILE   one "user resource action" per line instead
//	-no-baseline      skip the /healthz phase
//	-json             machine-readable report on stdout
//	-timeout D        per-request timeout (default 5s)
//
// The first SIGINT ends the run early and prints what was measured so far.
// The human summary gives requests/s and checks/s, p50/p90/p99/p99.9/max
// latency from a log-linear histogram (within 0.8%), and errors by kind:
// unexpected status codes, transport errors, batch answers with the wrong
// number of results and, for the open loop, late and missed sends.
package main
