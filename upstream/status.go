package upstream

import (
	"context"
)

// Status sends one STATUS for mediaID (a GET, as X requires) and returns the
// media with its processing info. creds nil means Config.Credentials. For
// media that never needed processing X answers 400 "Not found".
func (c *Client) Status(ctx context.Context, creds Credentials, mediaID string) (*Media, error) {
	creds, err := c.creds(creds)
	if err != nil {
		return nil, err
	}
	if !validMediaID(mediaID) {
		return nil, invalidf("media id %q is not numeric", truncate(mediaID, 32))
	}
	return c.status(ctx, creds, mediaID)
}

func (c *Client) status(ctx context.Context, creds Credentials, id string) (*Media, error) {
	r := c.d.statusReq(id)
	r.mediaID = id
	m, _, err := c.call(ctx, creds, r, callOpts{})
	if err != nil {
		return nil, err
	}
	if m.ID == "" {
		m.ID = id
	}
	return m, nil
}
