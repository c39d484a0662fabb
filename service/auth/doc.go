// Package auth is mediagw's authentication: it establishes who calls, the
// same way for both transports. An [Authenticator] checks the client
// certificate (mTLS: the caller is the certificate's first URI SAN, a
// SPIFFE id, else its CN) and the bearer token (a [TokenVerifier]; the JWT
// one, [JWTVerifier], checks tokens against a JWKS file or URL) and puts
// the caller's [Identity] into the call's context through gRPC
// interceptors and an HTTP middleware: the only place the rest of mediagw
// reads it from ([IdentityFrom]). [TLSFiles] serves both listeners'
// certificates from files; it and the JWKS file are reloaded when they
// change (a Kubernetes secret update) and on SIGHUP.
package auth
