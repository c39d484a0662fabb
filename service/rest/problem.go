package rest

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/mediagw/mediagw/service/apierr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// writeProblem is the gateway's error handler.
func writeProblem(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	apierr.WriteProblem(w, err)
}

// routingProblem answers requests that match no route: 404, or 405 with
// the route's Allow header when only the method is wrong.
func routingProblem(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allow := routes[Route(r.URL.Path)]
		w.Header().Set("Allow", allow)
		apierr.WriteHTTPProblem(w, apierr.Problem{Type: "about:blank", Title: http.StatusText(httpStatus), Status: httpStatus,
			Detail: fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, Route(r.URL.Path), allow), Code: "UNIMPLEMENTED"})
		return
	case http.StatusBadRequest:
		err = status.Error(codes.InvalidArgument, "the request path is malformed")
	default:
		err = status.Errorf(codes.NotFound, "no route %s %s", r.Method, apierr.Quote(r.URL.Path))
	}
	writeProblem(ctx, mux, m, w, r, err)
}
