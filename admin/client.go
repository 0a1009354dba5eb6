package admin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ccsbc/ccsbc/config"
)

// clientTimeout bounds a Client request when the context has no deadline.
const clientTimeout = 10 * time.Second

// maxCallsBytes bounds the /calls response a Client reads: thousands of
// calls fit easily.
const maxCallsBytes = 64 << 20

// Client talks to a ccsbc admin listener; the ccsbc CLI uses it.
type Client struct {
	// Addr is the admin listener: host:port for plain HTTP
	// ("127.0.0.1:9060"), or a URL ("https://192.0.2.10:9060").
	Addr string
	// Token is the bearer token, in clear; "" to send none (a client
	// certificate in TLSConfig may authenticate instead).
	Token string
	// TLSConfig verifies an https listener and may hold a client
	// certificate. Nil: the system's roots (see PinnedTLSConfig for the
	// self-signed instance certificate).
	TLSConfig *tls.Config
	// HTTPClient, if set, is used as is (TLSConfig is then ignored).
	HTTPClient *http.Client
}

// PinnedTLSConfig trusts the one server certificate whose SHA-256 is
// fingerprint (64 hex digits, colons allowed): the way to reach an
// instance whose certificate is self-signed, as ccsbc's generated one is.
func PinnedTLSConfig(fingerprint string) (*tls.Config, error) {
	pin, err := config.ParseFingerprint(fingerprint)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Not skipped: the chain check is replaced by the pin check.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("admin: the server presented no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("admin: the server presented certificate sha256 %x, pinned %x", sum, pin)
			}
			return nil
		},
	}, nil
}

// Calls returns the calls in progress (GET /calls), oldest first.
func (c *Client) Calls(ctx context.Context) ([]Call, error) {
	var calls []Call
	err := c.do(ctx, http.MethodGet, "/calls", func(body io.Reader) error {
		if err := json.NewDecoder(io.LimitReader(body, maxCallsBytes)).Decode(&calls); err != nil {
			return fmt.Errorf("admin: calls: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return calls, nil
}

// Reload asks the daemon to reload its configuration (POST /reload); the
// error says why it did not.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/reload", nil)
}

// Drain asks the daemon to drain (POST /drain).
func (c *Client) Drain(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/drain", nil)
}

// do sends a request and hands a 2xx response's body to read (nil: the
// body is discarded); any other status is a *StatusError with the body's
// first line.
func (c *Client) do(ctx context.Context, method, path string, read func(io.Reader) error) error {
	base, err := c.baseURL()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, clientTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTPClient
	if hc == nil {
		// No proxy: the admin listener is reached directly, and a token
		// must not travel through whatever HTTPS_PROXY says.
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: c.TLSConfig}}
		defer hc.CloseIdleConnections()
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		line, _ := bufio.NewReader(io.LimitReader(res.Body, 4<<10)).ReadString('\n')
		return &StatusError{Code: res.StatusCode, Msg: strings.TrimSpace(line)}
	}
	if read == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil
	}
	return read(res.Body)
}

// baseURL is Addr as a URL without a trailing slash.
func (c *Client) baseURL() (string, error) {
	addr := strings.TrimSpace(c.Addr)
	if addr == "" {
		return "", fmt.Errorf("admin: no admin address; the default is 127.0.0.1:9060")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("admin: %q is not an admin address; write host:port or https://host:port", c.Addr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}
