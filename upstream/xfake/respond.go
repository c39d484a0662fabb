package xfake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Content types X uses.
const (
	ctJSON    = "application/json; charset=utf-8"
	ctV11JSON = "application/json;charset=utf-8"
	ctProblem = "application/problem+json"
	ctV11Text = "text/html;charset=utf-8" // v1.1 sends it on its empty 204s
)

// response is a fully built answer. Handlers return one instead of writing,
// so that an "after" fault can apply the request and then lose the answer.
type response struct {
	status int
	ctype  string
	header http.Header
	body   []byte
}

func (r *response) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	if r.ctype != "" {
		h.Set("Content-Type", r.ctype)
	}
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func (r *response) setHeader(k, v string) *response {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set(k, v)
	return r
}

func jsonResponse(status int, ctype string, v any) *response {
	b, err := json.Marshal(v)
	if err != nil { // only static, known-good types are marshalled
		b = []byte(`{"errors":["internal server error"]}`)
		status = http.StatusInternalServerError
	}
	return &response{status: status, ctype: ctype, body: b}
}

func emptyResponse(status int, ctype string) *response {
	return &response{status: status, ctype: ctype}
}

// The v2 error shapes.

type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Type   string `json:"type"`
	Status int    `json:"status"`
}

// problemResponse answers a generic RFC 7807 Problem, as X's edge does for
// 401, 403, 429 and 503 (v2_08, v2_11).
func problemResponse(status int) *response {
	t := http.StatusText(status)
	return jsonResponse(status, ctProblem, problem{Title: t, Detail: t, Type: "about:blank", Status: status})
}

type messageItem struct {
	Message string `json:"message"`
}

type invalidRequestBody struct {
	Errors []messageItem `json:"errors"`
	Title  string        `json:"title"`
	Detail string        `json:"detail"`
	Type   string        `json:"type"`
}

// invalidRequest answers X's hybrid 400: errors[] plus Problem fields (v2_07,
// v2_10).
func invalidRequest(msgs ...string) *response {
	items := make([]messageItem, len(msgs))
	for i, m := range msgs {
		items[i] = messageItem{Message: m}
	}
	return jsonResponse(http.StatusBadRequest, ctProblem, invalidRequestBody{
		Errors: items,
		Title:  "Invalid Request",
		Detail: "One or more parameters to your request was invalid.",
		Type:   "https://api.twitter.com/2/problems/invalid-request",
	})
}

// The v1.1 error shapes (also code 38 on the v2 command endpoint, v2_09).

type codeItem struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type codeErrors struct {
	Errors []codeItem `json:"errors"`
}

func codeError(status, code int, msg string) *response {
	return jsonResponse(status, ctV11JSON, codeErrors{Errors: []codeItem{{Code: code, Message: msg}}})
}

func missingParam(name string) *response {
	return codeError(http.StatusBadRequest, 38, name+" parameter is missing.")
}

type requestError struct {
	Request string `json:"request"`
	Error   string `json:"error"`
}

// v11RequestError answers the other v1.1 shape (v1_08).
func v11RequestError(status int, msg string) *response {
	return jsonResponse(status, ctV11JSON, requestError{Request: v11Path, Error: msg})
}

func internalError500V2() *response {
	return jsonResponse(http.StatusInternalServerError, ctJSON, struct {
		Errors []string `json:"errors"`
	}{Errors: []string{"internal server error"}})
}

func tooLarge() *response { return emptyResponse(http.StatusRequestEntityTooLarge, "") }
