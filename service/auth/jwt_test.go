package auth

import (
	"encoding/base64"
	"errors"
	"testing"
)

func token(header, claims string) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(claims)) + ".c2ln"
}

// TestTokenShape: what golang-jwt would let through is refused before the
// signature is even looked at: crit extensions, a typ other than the
// configured one, exp or nbf that are not numbers.
func TestTokenShape(t *testing.T) {
	t.Parallel()
	v := &JWTVerifier{}
	typed := &JWTVerifier{}
	typed.SetType("JWT")
	good := `{"alg":"ES256","kid":"k","typ":"JWT"}`
	for _, c := range []struct {
		v      *JWTVerifier
		tok    string
		reason string
	}{
		{v, token(good, `{"sub":"s","exp":1900000000}`), ""},
		{v, token(`{"alg":"ES256","crit":["exp"],"exp":1}`, `{"sub":"s","exp":1900000000}`), "CLAIMS"},
		{v, token(good, `{"sub":"s","exp":"1900000000"}`), "CLAIMS"},
		{v, token(good, `{"sub":"s","exp":1900000000,"nbf":"0"}`), "CLAIMS"},
		{v, "a.b", "MALFORMED"},
		{v, token(good, `not json`), "MALFORMED"},
		{typed, token(good, `{"sub":"s","exp":1900000000}`), ""},
		{typed, token(`{"alg":"ES256","typ":"application/jwt"}`, `{"exp":1}`), ""},
		{typed, token(`{"alg":"ES256","typ":"at+jwt"}`, `{"exp":1}`), "TYPE"},
		{typed, token(`{"alg":"ES256"}`, `{"exp":1}`), "TYPE"},
	} {
		err := c.v.checkShape(c.tok)
		var te *TokenError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: refused: %v", c.tok, err)
		case c.reason != "" && (!errors.As(err, &te) || te.Reason != c.reason):
			t.Errorf("%s: %v, want reason %s", c.tok, err, c.reason)
		}
	}
}
