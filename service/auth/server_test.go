package auth

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestLimitListener: with the cap held by idle connections, a new one is
// closed at once; closing an idle one frees its slot.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c within 5 s.
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	a, _ := dial(), dial()
	time.Sleep(100 * time.Millisecond) // both accepted
	if !closedByServer(dial()) {
		t.Fatal("third connection over a cap of 2 was kept open")
	}
	a.Close()
	time.Sleep(100 * time.Millisecond)
	c := dial()
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection after a slot was freed: %v, want it kept open", err)
	}
}

// TestSmugglingClosesConnection: a request with both Content-Length and
// Transfer-Encoding is answered and the connection closed (RFC 9112 §6.1).
func TestSmugglingClosesConnection(t *testing.T) {
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	addr := startServer(t, h, DefaultServerConfig())
	for _, tt := range []struct {
		name, req string
		closed    bool
	}{
		{"CL+TE", "GET /?user=john&password=nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"plain", "GET /?user=john&password=nope HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, tt.req); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 401 {
			t.Errorf("%s: status %d, want 401", tt.name, resp.StatusCode)
		}
		if resp.Close != tt.closed {
			t.Errorf("%s: response Close=%v, want %v", tt.name, resp.Close, tt.closed)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		if gotClosed := errors.Is(err, io.EOF); gotClosed != tt.closed {
			t.Errorf("%s: after the response read %v, want closed=%v", tt.name, err, tt.closed)
		}
	}
}
