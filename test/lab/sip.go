package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// SIPResponse is a SIP response read by SIPOptions.
type SIPResponse struct {
	Status int
	Reason string
	Raw    string // the whole message as received
}

// Header is the first value of a header (case-insensitive name), "" if
// absent.
func (r SIPResponse) Header(name string) string {
	for _, line := range strings.Split(r.Raw, "\r\n")[1:] {
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// SIPOptions sends one OPTIONS out of dialog to addr ("127.0.0.1:5060")
// over network "udp", "tcp" or "tls" and returns the first final response
// (provisional ones are skipped). Over TLS the server's certificate is not
// verified and tlsConf, when given, is used as it is (client certificate,
// versions...). UDP requests are repeated every 500 ms until ctx ends.
func SIPOptions(ctx context.Context, network, addr string, tlsConf *tls.Config) (SIPResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var d net.Dialer
	var conn net.Conn
	var err error
	switch network {
	case "udp", "tcp":
		conn, err = d.DialContext(ctx, network, addr)
	case "tls":
		if tlsConf == nil {
			tlsConf = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a probe, not a peer
		}
		td := tls.Dialer{NetDialer: &d, Config: tlsConf}
		conn, err = td.DialContext(ctx, "tcp", addr)
	default:
		return SIPResponse{}, fmt.Errorf("lab: SIPOptions over %q: want udp, tcp or tls", network)
	}
	if err != nil {
		return SIPResponse{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	req := optionsRequest(network, conn.LocalAddr().String(), addr)
	if network != "udp" {
		if _, err := io.WriteString(conn, req); err != nil {
			return SIPResponse{}, err
		}
		br := bufio.NewReader(conn)
		for {
			resp, err := readSIPStream(br)
			if err != nil {
				return SIPResponse{}, ctxErr(ctx, err)
			}
			if resp.Status >= 200 {
				return resp, nil
			}
		}
	}
	buf := make([]byte, 65535)
	for {
		if _, err := io.WriteString(conn, req); err != nil {
			return SIPResponse{}, ctxErr(ctx, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
					break // send again
				}
				return SIPResponse{}, ctxErr(ctx, err)
			}
			resp, err := parseSIPResponse(string(buf[:n]))
			if err != nil {
				return SIPResponse{}, err
			}
			if resp.Status >= 200 {
				return resp, nil
			}
		}
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("lab: no SIP response: %w", ctx.Err())
	}
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func optionsRequest(network, local, remote string) string {
	proto := strings.ToUpper(network)
	uri := "sip:ping@" + remote
	if network == "tls" {
		uri += ";transport=tls"
	} else if network == "tcp" {
		uri += ";transport=tcp"
	}
	return "OPTIONS " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + proto + " " + local + ";branch=z9hG4bK" + randHex(8) + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:lab@127.0.0.1>;tag=" + randHex(4) + "\r\n" +
		"To: <" + uri + ">\r\n" +
		"Call-ID: " + randHex(8) + "@127.0.0.1\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Contact: <sip:lab@" + local + ">\r\n" +
		"Accept: application/sdp\r\n" +
		"User-Agent: ccsbc-lab probe\r\n" +
		"Content-Length: 0\r\n\r\n"
}

// readSIPStream reads one message from a stream transport.
func readSIPStream(br *bufio.Reader) (SIPResponse, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return SIPResponse{}, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keepalive CRLF
		}
		head.WriteString(line)
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			break
		}
		if k, v, ok := strings.Cut(trimmed, ":"); ok {
			k = strings.TrimSpace(k)
			if strings.EqualFold(k, "Content-Length") || k == "l" {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return SIPResponse{}, err
	}
	return parseSIPResponse(head.String() + string(body))
}

func parseSIPResponse(raw string) (SIPResponse, error) {
	first, _, _ := strings.Cut(raw, "\n")
	first = strings.TrimRight(first, "\r")
	f := strings.SplitN(first, " ", 3)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return SIPResponse{}, fmt.Errorf("lab: not a SIP response: %q", first)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return SIPResponse{}, fmt.Errorf("lab: bad status line %q", first)
	}
	r := SIPResponse{Status: code, Raw: raw}
	if len(f) == 3 {
		r.Reason = f[2]
	}
	return r, nil
}
