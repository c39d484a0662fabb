// Package gen holds the code generated from proto/ by buf (see buf.gen.yaml)
// and embeds the generated OpenAPI document. This file is the only one in
// gen/ that is written by hand.
package gen

import _ "embed"

// OpenAPI is the OpenAPI v2 document generated for the REST gateway.
//
//go:embed openapi/mediagw/v1/media.swagger.json
var OpenAPI []byte
