package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NGClient speaks rtpengine's ng control protocol over UDP: each request
// is "<cookie> <bencoded dictionary>" and its response carries the same
// cookie. Requests are retransmitted until answered, like a SIP proxy does.
// It is safe for concurrent use.
type NGClient struct {
	conn *net.UDPConn
	seq  atomic.Uint64
	mu   sync.Mutex
	wait map[string]chan map[string]any
	done chan struct{}
}

// DialNG connects to an ng control socket; addr must be on loopback.
func DialNG(addr string) (*NGClient, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	if !ua.IP.IsLoopback() {
		return nil, fmt.Errorf("load: ng address %s is not on loopback", addr)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	n := &NGClient{conn: c, wait: map[string]chan map[string]any{}, done: make(chan struct{})}
	go n.readLoop()
	return n, nil
}

func (n *NGClient) readLoop() {
	defer close(n.done)
	buf := make([]byte, 65536)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		cookie, body, ok := bytes.Cut(buf[:k], []byte(" "))
		if !ok {
			continue
		}
		v, _, err := bdecode(body)
		if err != nil {
			continue
		}
		m, _ := v.(map[string]any)
		n.mu.Lock()
		ch := n.wait[string(cookie)]
		delete(n.wait, string(cookie))
		n.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// Close closes the socket.
func (n *NGClient) Close() error {
	err := n.conn.Close()
	<-n.done
	return err
}

// Do sends one command and returns rtpengine's response dictionary; a
// result of "error" is returned as an error with its reason.
func (n *NGClient) Do(ctx context.Context, req map[string]any) (map[string]any, error) {
	cookie := strconv.FormatUint(n.seq.Add(1), 36) + "_ccsbc"
	msg := append([]byte(cookie), ' ')
	msg, err := bencode(msg, req)
	if err != nil {
		return nil, err
	}
	ch := make(chan map[string]any, 1)
	n.mu.Lock()
	n.wait[cookie] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.wait, cookie)
		n.mu.Unlock()
	}()
	retry := 500 * time.Millisecond
	for {
		if _, err := n.conn.Write(msg); err != nil {
			return nil, fmt.Errorf("load: ng %v: %w", req["command"], err)
		}
		select {
		case res := <-ch:
			if r, _ := res["result"].(string); r == "error" {
				return res, fmt.Errorf("load: ng %v: %v", req["command"], res["error-reason"])
			}
			return res, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("load: ng %v: %w", req["command"], ctx.Err())
		case <-time.After(retry):
			retry = min(2*retry, 2*time.Second)
		}
	}
}
