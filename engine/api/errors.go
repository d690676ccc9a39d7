package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/charter-policy/charter/engine"
)

// Error codes of {"error":{"code",...}}.
const (
	codeInvalidJSON      = "invalid_json"
	codeUnknownField     = "unknown_field"
	codeInvalidPath      = "invalid_path"
	codeInvalidUser      = "invalid_user"
	codeInvalidResource  = "invalid_resource"
	codeInvalidAction    = "invalid_action"
	codeInvalidQuestion  = "invalid_question"
	codeUnknownRole      = "unknown_role"
	codeInvalidTime      = "invalid_time"
	codeInvalidArgument  = "invalid_argument"
	codeInvalidCursor    = "invalid_cursor"
	codeTooManyChecks    = "too_many_checks"
	codeForbidden        = "forbidden"
	codeInvalidSignature = "invalid_signature"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeRevisionBehind   = "revision_behind"
	codeBodyTooLarge     = "body_too_large"
	codeNoSnapshot       = "no_snapshot"
	codeRateLimited      = "rate_limited"
	codeInternal         = "internal"
)

const bodyTooLargeMsg = "request body exceeds 1 MiB"

var jsonContentType = []string{"application/json"}

// apiError is an error answer: its status and body.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// writeError answers {"error":{"code","message"}} with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, struct {
		Error apiError `json:"error"`
	}{apiError{Code: code, Message: msg}})
}

func (e *apiError) write(w http.ResponseWriter) { writeError(w, e.Status, e.Code, e.Message) }

// writeJSON answers v as JSON with status, "<", ">" and "&" as they are
// (the answers are JSON, not HTML). The values encoded here cannot fail to
// encode; should one, the client gets a 500 rather than half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends the value with "\n"
		writeBody(w, http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`+"\n"))
		return
	}
	writeBody(w, status, buf.Bytes())
}

// writeBody answers a JSON body with status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// questionError turns an error of the engine into an answer: a malformed
// question is the client's (400); anything else is a bug (500).
func questionError(err error) *apiError {
	var qe *engine.QuestionError
	if !errors.As(err, &qe) {
		return &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error"}
	}
	code := codeInvalidQuestion
	switch {
	case errors.Is(err, engine.ErrUnknownRole):
		code = codeUnknownRole
	case qe.Arg == "user":
		code = codeInvalidUser
	case qe.Arg == "resource" || qe.Arg == "collection":
		code = codeInvalidResource
	case qe.Arg == "action":
		code = codeInvalidAction
	case qe.Arg == "cursor":
		code = codeInvalidCursor
	case qe.Arg == "limit":
		code = codeInvalidArgument
	case qe.Arg == "role" || qe.Arg == "assign":
		code = codeUnknownRole
	}
	return badRequest(code, err.Error())
}
