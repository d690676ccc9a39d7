package schema

import (
	"context"
	"errors"
	"fmt"
)

// CUERunner evaluates a CUE unit somewhere other than the Loader's own
// process, so that a runaway evaluation cannot take the process down:
// package schema/cueproc runs each request in a child process that calls
// EvalCUERequest under a memory limit and a deadline.
type CUERunner interface {
	// RunCUE returns the response of EvalCUERequest for request. An error
	// that is an *EvalError (errors.As) is the unit's fault, such as a
	// limit it exceeded; when ctx ends, RunCUE returns promptly with an
	// error; any other error is the runner's own (it could not start).
	RunCUE(ctx context.Context, request []byte) ([]byte, error)
}

// EvalError is a CUERunner's report that evaluating a unit failed through
// the unit's own fault: it exceeded a limit, or it crashed the evaluator.
// The Loader reports it as an error of the unit, at its first file.
type EvalError struct {
	// Message says what happened and which setting bounds it, e.g.
	// "evaluation exceeded 1 GiB (--cue-memory-limit)". It never quotes
	// what the evaluation printed, which may hold file content.
	Message string
}

func (e *EvalError) Error() string { return e.Message }

// EvalCUERequest evaluates one request (the CUE files of a unit, as the
// Loader hands them to a CUERunner) and returns the response the runner
// must give back. It is what a CUERunner's child process runs for each
// request. An error means the request could not be decoded; errors in the
// CUE files are part of the response.
func EvalCUERequest(request []byte) ([]byte, error) {
	dir, files, err := decodeCUERequest(request)
	if err != nil {
		return nil, err
	}
	return encodeCUEResponse(evalCUE(dir, files)), nil
}

// evalCUEUnit evaluates the CUE files of u with l.CUE, or in this process
// when it is nil. A runner's EvalError becomes the unit's error, at its
// first file; when ctx ends it returns ctx's error; any other error of the
// runner ends the load.
func (l *Loader) evalCUEUnit(ctx context.Context, u *unit) (cueResult, error) {
	if l.CUE == nil {
		return evalCUE(u.dir, u.files), nil
	}
	response, err := l.CUE.RunCUE(ctx, encodeCUERequest(u.dir, u.files))
	if cerr := ctx.Err(); cerr != nil {
		return cueResult{}, cerr
	}
	var eval *EvalError
	switch {
	case errors.As(err, &eval):
		first := Pos{File: u.files[0].name, Line: 1, Col: 1}
		return cueResult{errs: Errors{{Pos: first, Message: eval.Message}}}, nil
	case err != nil:
		return cueResult{}, fmt.Errorf("evaluate the CUE files of %s: %w", u.dir, err)
	}
	res, err := decodeCUEResponse(response)
	if err != nil {
		return cueResult{}, fmt.Errorf("evaluate the CUE files of %s: %w", u.dir, err)
	}
	return res, nil
}
