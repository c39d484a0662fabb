package tokens

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

// Key is one sealing key and the file it came from.
type Key struct {
	id   string
	path string
	aead cipher.AEAD
}

// ID is the key's id: a hash of the key, stored with every value it seals.
func (k *Key) ID() string { return k.id }

// Path is the file the key was read from.
func (k *Key) Path() string { return k.path }

// LoadKeyFile reads a key: a file of exactly 32 bytes, or of the 32 bytes as
// 64 hex digits or standard base64 (surrounding white space ignored). The
// file should be readable by its owner only; a key any user can read is
// refused.
func LoadKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s cannot be read: %w", path, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("secrets key file %s is readable by every user; chmod 600 it", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s cannot be read: %w", path, err)
	}
	raw, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s %v", path, err)
	}
	return NewKey(raw, path)
}

func decodeKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("holds %d bytes: want a %d-byte key (raw, 64 hex digits or base64)", len(b), KeySize)
}

// NewKey makes a Key of 32 raw bytes; path names it in errors.
func NewKey(raw []byte, path string) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("secrets key %s has %d bytes, want %d", path, len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("mediagw token key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:8]), path: path, aead: aead}, nil
}

// Keyring seals with its current key and opens with the current one or any
// of the old (read-only) ones, chosen by the key id of each value.
type Keyring struct {
	current *Key
	byID    map[string]*Key
}

// NewKeyring returns a keyring sealing with current; old keys only open.
func NewKeyring(current *Key, old ...*Key) *Keyring {
	kr := &Keyring{current: current, byID: map[string]*Key{current.id: current}}
	for _, k := range old {
		if _, dup := kr.byID[k.id]; !dup {
			kr.byID[k.id] = k
		}
	}
	return kr
}

// Current is the key new values are sealed with.
func (kr *Keyring) Current() *Key { return kr.current }

// sealPrefix starts every sealed value: format version 1.
const sealPrefix = "mgtok1:"

// record is the plaintext of a sealed token. Of the token's extra fields,
// only scope is kept.
type record struct {
	Access  string    `json:"a,omitempty"`
	Refresh string    `json:"r,omitempty"`
	Type    string    `json:"t,omitempty"`
	Expiry  time.Time `json:"e,omitzero"`
	Scope   string    `json:"s,omitempty"`
}

// Seal encrypts tok for account: "mgtok1:<key id>:<base64 nonce+ciphertext>".
func (kr *Keyring) Seal(account string, tok *oauth2.Token) ([]byte, error) {
	if tok == nil {
		return nil, errors.New("no token to store")
	}
	rec := record{Access: tok.AccessToken, Refresh: tok.RefreshToken, Type: tok.TokenType, Expiry: tok.Expiry}
	if s, ok := tok.Extra("scope").(string); ok {
		rec.Scope = s
	}
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	k := kr.current
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := k.aead.Seal(nonce, nonce, plain, []byte(account))
	out := make([]byte, 0, len(sealPrefix)+len(k.id)+1+base64.RawStdEncoding.EncodedLen(len(sealed)))
	out = append(out, sealPrefix...)
	out = append(out, k.id...)
	out = append(out, ':')
	return base64.RawStdEncoding.AppendEncode(out, sealed), nil
}

// Open decrypts a value Seal made for account. A value sealed with a key
// the keyring lacks, or that does not open, fails naming the key file.
func (kr *Keyring) Open(account string, b []byte) (*oauth2.Token, error) {
	rest, ok := bytes.CutPrefix(b, []byte(sealPrefix))
	id, body, ok2 := bytes.Cut(rest, []byte(":"))
	if !ok || !ok2 {
		return nil, fmt.Errorf("the stored token of account %q is not a sealed token", account)
	}
	k := kr.byID[string(id)]
	if k == nil {
		return nil, fmt.Errorf("the stored token of account %q was sealed with key %s, which is neither the key in %s nor an old key given",
			account, id, kr.current.path)
	}
	sealed, err := base64.RawStdEncoding.AppendDecode(nil, body)
	if err != nil || len(sealed) < k.aead.NonceSize() {
		return nil, fmt.Errorf("the stored token of account %q is damaged", account)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(account))
	if err != nil {
		return nil, fmt.Errorf("the stored token of account %q does not open with the key in %s (damaged, or stored for another account)",
			account, k.path)
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("the stored token of account %q is damaged", account)
	}
	tok := &oauth2.Token{AccessToken: rec.Access, RefreshToken: rec.Refresh, TokenType: rec.Type, Expiry: rec.Expiry}
	if rec.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": rec.Scope})
	}
	return tok, nil
}
