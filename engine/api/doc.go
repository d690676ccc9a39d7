// Package api serves Charter's HTTP API (SPEC section 5): authorization
// checks, listings, explanations, status, health and metrics, answered from
// the snapshot a Backend serves. It holds no state of its own beyond
// per-snapshot response caches and metrics.
//
// README.md in this directory is the API's reference, with examples that
// readme_test.go runs against a real server.
package api
