package auth

import (
	"errors"
	"io"
	"net"
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
