package rest

import (
	"encoding/json"
	"fmt"
)

// uploadOperation documents POST /v1/media:upload, which the gateway serves
// itself (HandlePath) and protoc-gen-openapiv2 therefore cannot see.
const uploadOperation = `{
  "post": {
    "summary": "Upload media from a raw body or a multipart/form-data body.",
    "description": "The body goes into the same upload path as the Upload RPC, straight into X's segments; it is never held whole. A raw body is the media itself; total_bytes defaults to Content-Length and media_type to the Content-Type when that is a media type. A body of unknown length (chunked, no total_bytes) is spooled until it ends, then uploaded. A multipart/form-data body has the fields below as form fields before one 'media' file part, and nothing after it. A caller uploading for an X user passes the user's OAuth 2.0 token in X-Access-Token.",
    "operationId": "MediaUploadService_UploadBody",
    "consumes": ["application/octet-stream", "multipart/form-data", "video/mp4", "video/quicktime", "video/webm", "video/mp2t", "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff", "text/srt", "text/vtt"],
    "parameters": [
      {"name": "media_type", "in": "query", "type": "string", "description": "X media type, e.g. video/mp4."},
      {"name": "media_category", "in": "query", "type": "string", "description": "X category (tweet_image, tweet_gif, tweet_video, amplify_video, dm_image, dm_gif, dm_video, subtitles); derived from media_type when absent."},
      {"name": "total_bytes", "in": "query", "type": "string", "format": "int64", "description": "Exact size of the media."},
      {"name": "additional_owners", "in": "query", "type": "string", "description": "Comma-separated X user ids."},
      {"name": "shared", "in": "query", "type": "boolean"},
      {"name": "sha256", "in": "query", "type": "string", "description": "Hex SHA-256 of the whole media: when the bytes received do not match, the upload fails with 400 and is not finalized."},
      {"name": "idempotency_key", "in": "query", "type": "string", "description": "Names the upload for retries and resumes (also the Idempotency-Key header): a finished key answers its stored response, an interrupted one is resumed with resume_offset."},
      {"name": "Idempotency-Key", "in": "header", "type": "string", "description": "The idempotency key (A-Z a-z 0-9 . _ ~ : -, up to 128 characters)."},
      {"name": "resume_offset", "in": "query", "type": "string", "format": "int64", "description": "Resume the interrupted upload of the key at this offset, its committed_bytes; the body is the rest of the file."},
      {"name": "account", "in": "query", "type": "string", "description": "The configured X account to upload with; default: the caller's."},
      {"name": "X-Access-Token", "in": "header", "type": "string", "description": "The X user's OAuth 2.0 access token; default: mediagw's credentials."},
      {"name": "body", "in": "body", "required": true, "schema": {"type": "string", "format": "binary"}}
    ],
    "responses": {
      "200": {"description": "X accepted the media (or a finished idempotency key's stored answer).", "schema": {"$ref": "#/definitions/v1UploadResponse"}},
      "409": {"description": "Another stream drives the key, or resume_offset is not its committed_bytes (see committed_bytes).", "schema": {"$ref": "#/definitions/Problem"}},
      "422": {"description": "The media breaks X's media rules (--media-checks enforce): violations lists each rule with its limit and the media's value.", "schema": {"$ref": "#/definitions/Problem"}},
      "503": {"description": "X is unavailable, or the upload was interrupted: resume it at committed_bytes.", "schema": {"$ref": "#/definitions/Problem"}}
    },
    "tags": ["MediaUploadService"]
  }
}`

// extraDefinitions are the schemas uploadOperation and the error responses
// refer to.
const extraDefinitions = `{
  "v1UploadResponse": {
    "type": "object",
    "properties": {
      "media_id": {"type": "string"},
      "media_key": {"type": "string"},
      "size": {"type": "string", "format": "int64"},
      "expires_after_secs": {"type": "string", "format": "int64"},
      "processing": {"$ref": "#/definitions/v1ProcessingStatus"},
      "inspection": {"$ref": "#/definitions/v1MediaInspection"}
    }
  },
  "Problem": {
    "type": "object",
    "description": "RFC 7807 problem document, the body of every error (application/problem+json).",
    "properties": {
      "type": {"type": "string"},
      "title": {"type": "string"},
      "status": {"type": "integer"},
      "detail": {"type": "string"},
      "code": {"type": "string", "description": "gRPC status code name, e.g. INVALID_ARGUMENT."},
      "reason": {"type": "string", "description": "The ErrorInfo reason (domain mediagw) when the error has one, e.g. CALLER_IDLE."},
      "retry_after_seconds": {"type": "integer", "description": "When rate limited: seconds until X's window resets (also in Retry-After)."},
      "idempotency_key": {"type": "string", "description": "The key of an interrupted or conflicting upload."},
      "committed_bytes": {"type": "integer", "format": "int64", "description": "Where the upload of idempotency_key stands: resume it here."},
      "violations": {"type": "array", "description": "The media rules the upload breaks (HTTP 422).", "items": {"type": "object", "properties": {
        "reason": {"type": "string", "description": "The rule, e.g. VIDEO_TOO_LONG (also an ErrorInfo reason over gRPC)."},
        "field": {"type": "string"}, "limit": {"type": "string"}, "actual": {"type": "string"}, "detail": {"type": "string"}}}}
    }
  }
}`

// completeOpenAPI adds the upload route and the Problem schema to the
// generated document, and makes Problem the default response of every
// operation: the gateway's errors are problem documents, not rpc Status.
func completeOpenAPI(generated []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(generated, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	defs, _ := doc["definitions"].(map[string]any)
	if paths == nil || defs == nil {
		return nil, fmt.Errorf("openapi: the generated document has no paths or definitions")
	}
	var op, extra map[string]any
	if err := json.Unmarshal([]byte(uploadOperation), &op); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(extraDefinitions), &extra); err != nil {
		return nil, err
	}
	paths["/v1/media:upload"] = op
	for k, v := range extra {
		defs[k] = v
	}
	problem := map[string]any{
		"description": "An error, as an RFC 7807 problem document.",
		"schema":      map[string]any{"$ref": "#/definitions/Problem"},
	}
	for _, p := range paths {
		for _, o := range p.(map[string]any) {
			if resp, ok := o.(map[string]any)["responses"].(map[string]any); ok {
				resp["default"] = problem
			}
		}
	}
	// The gateway answers errors, in-band stream errors too, as problem
	// documents, never as rpc Status.
	replaceRef(doc, "#/definitions/rpcStatus", "#/definitions/Problem")
	delete(defs, "rpcStatus")
	delete(defs, "protobufAny")
	return json.MarshalIndent(doc, "", "  ")
}

// replaceRef points every $ref of from at to.
func replaceRef(v any, from, to string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "$ref" && x == from {
				v[k] = to
				continue
			}
			replaceRef(x, from, to)
		}
	case []any:
		for _, x := range v {
			replaceRef(x, from, to)
		}
	}
}
