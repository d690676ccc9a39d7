package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The request decoders as encoding/json would be, strictly: the reference
// that the fuzz targets compare the reflection-free decoders with.

// decodeBody decodes the one JSON value of body into v, strictly: unknown
// fields, trailing data and bodies over MaxBodyBytes are errors. body should
// be bounded by http.MaxBytesReader (or be a bounded reader in tests).
func decodeBody(body io.Reader, v any) *apiError {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			if e := decodeError(err); e.Status != http.StatusBadRequest {
				return e
			}
		}
		return badRequest(codeInvalidJSON, "unexpected data after the JSON value")
	}
	return nil
}

func decodeError(err error) *apiError {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge, Message: bodyTooLargeMsg}
	case errors.Is(err, io.EOF):
		return badRequest(codeInvalidJSON, "empty body: a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(codeInvalidJSON, "truncated JSON")
	case errors.As(err, &se):
		return badRequest(codeInvalidJSON, "invalid JSON at byte "+strconv.FormatInt(se.Offset, 10)+": "+se.Error())
	case errors.As(err, &ute):
		where := ute.Field
		if where == "" {
			where = "the body"
		}
		return badRequest(codeInvalidJSON, where+": expected "+ute.Type.String()+", got JSON "+ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for DisallowUnknownFields.
		return badRequest(codeUnknownField, strings.TrimPrefix(err.Error(), "json: "))
	default:
		return badRequest(codeInvalidJSON, "reading the body: "+err.Error())
	}
}
