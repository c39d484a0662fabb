package client

import (
	"context"
	"crypto/tls"
	"io"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"

	mediagwv1 "github.com/mediagw/mediagw/gen/mediagw/v1"
)

// certWatch notes when a server asks for a client certificate the client
// does not have. Under TLS 1.3 the client's handshake completes before
// the server checks it, so the refusal arrives as an alert on the first
// read, or, when the server's reset overtakes it, as a bare broken
// connection: a request for a certificate that was answered with none
// tells that failure apart from a network one, and it is not retried.
type certWatch struct {
	asked atomic.Bool
}

// wrap returns cfg with a GetClientCertificate that picks a certificate
// as crypto/tls does and notes when there was none to give.
func (w *certWatch) wrap(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	if cfg.GetClientCertificate != nil {
		return cfg
	}
	certs := cfg.Certificates
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		if len(certs) > 0 {
			return &certs[0], nil
		}
		w.asked.Store(true)
		return &tls.Certificate{}, nil
	}
	return cfg
}

// classify marks a broken connection as a TLS refusal when the server
// asked for a client certificate and got none. A call that succeeds
// clears the mark: that server takes callers without certificates.
func (w *certWatch) classify(err error) error {
	if err == nil {
		w.asked.Store(false)
		return nil
	}
	if !w.asked.Load() {
		return err
	}
	e := convert(err)
	if e.Code != codes.Unavailable || e.Upload != nil {
		return err
	}
	e.Reason = ReasonTLSHandshake
	if !strings.Contains(e.Message, "client certificate") {
		e.Message = "mediagw asked for a client certificate (mTLS) and none is configured: " + e.Message
	}
	return e
}

// classified is a transport whose broken connections are read with its
// certWatch.
type classified struct {
	transport
	w *certWatch
}

func (c classified) upload(ctx context.Context, start *mediagwv1.UploadStart, body io.Reader, sent func(int)) (*mediagwv1.UploadResponse, error) {
	r, err := c.transport.upload(ctx, start, body, sent)
	return r, c.w.classify(err)
}

func (c classified) getUpload(ctx context.Context, key string) (*mediagwv1.UploadState, error) {
	r, err := c.transport.getUpload(ctx, key)
	return r, c.w.classify(err)
}

func (c classified) getStatus(ctx context.Context, id string) (*mediagwv1.ProcessingStatus, error) {
	r, err := c.transport.getStatus(ctx, id)
	return r, c.w.classify(err)
}

func (c classified) watch(ctx context.Context, id string, each func(*mediagwv1.ProcessingStatus)) error {
	return c.w.classify(c.transport.watch(ctx, id, each))
}
