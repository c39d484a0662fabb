package rest

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
)

// TestOpenAPIIsValid checks the served document with a real OpenAPI
// implementation: it must load, convert and validate, every $ref
// resolving (the generated document refers to rpcStatus, which the
// gateway replaces by Problem).
func TestOpenAPIIsValid(t *testing.T) {
	t.Parallel()
	generated, err := os.ReadFile("../../gen/openapi/mediagw/v1/media.swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	served, err := completeOpenAPI(generated)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(served), "rpcStatus") {
		t.Fatal("the served document still refers to rpcStatus")
	}
	var v2 openapi2.T
	if err := json.Unmarshal(served, &v2); err != nil {
		t.Fatalf("not a Swagger 2.0 document: %v", err)
	}
	v3, err := openapi2conv.ToV3(&v2)
	if err != nil {
		t.Fatalf("converting: %v", err)
	}
	if err := v3.Validate(context.Background()); err != nil {
		t.Fatalf("invalid: %v", err)
	}
	for _, path := range []string{"/v1/media:upload", "/v1/media/{media_id}/status", "/v1/media/{media_id}/status:watch", "/v1/uploads/{idempotency_key}"} {
		if v3.Paths.Find(path) == nil {
			t.Errorf("no path %s", path)
		}
	}
}
