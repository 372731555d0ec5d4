package auth

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Port is the contract's port.
const Port = 8088

// ServerConfig bounds what one client can hold: a client that sends its
// headers slowly is cut off after ReadHeaderTimeout and, since every
// connection has its own goroutine, never delays another client.
type ServerConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds request line + headers; it admits two 64 KiB
	// query values (the contract answers those) and no more.
	MaxHeaderBytes int
	// MaxConns caps open connections (see LimitListener).
	MaxConns int
}

// DefaultServerConfig is what the guest uses. WriteTimeout leaves room for
// queued PBKDF2 runs (about 90 ms each at the default cost) under load.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		// Short, so idle keep-alive connections give their slot back soon.
		IdleTimeout:    5 * time.Second,
		MaxHeaderBytes: 256 << 10,
		MaxConns:       DefaultMaxConns,
	}
}

// NewServer returns an http.Server for h with cfg's limits; the caller
// sets Addr or calls Serve on its own listener.
func NewServer(h http.Handler, log *slog.Logger, cfg ServerConfig) *http.Server {
	return &http.Server{
		Handler:           closeOnTransferEncoding(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		// Otherwise net/http answers "OPTIONS *" with 200 itself.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// DefaultMaxConns caps open connections per guest, far below a default
// 1024/65536 descriptor limit, so a flood of idle keep-alive connections
// cannot starve new clients of descriptors.
const DefaultMaxConns = 512

// LimitListener accepts at most n open connections; one accepted beyond
// that is closed at once (the client sees a reset right away rather than
// waiting in the backlog, as golang.org/x/net/netutil.LimitListener, which
// blocks Accept, would make it). Idle connections are reaped by
// IdleTimeout, so the cap frees itself.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// closeOnTransferEncoding closes the connection after answering any request
// with a Transfer-Encoding. RFC 9112 §6.1 requires that for a request with
// both Transfer-Encoding and Content-Length (a smuggling attempt), but
// net/http (transfer.go fixLength, go1.26) deletes the Content-Length and
// keeps the connection open, so the handler cannot tell the two apart;
// the contract's GET/HEAD carry no body, so closing on every
// Transfer-Encoding costs a legitimate client nothing.
func closeOnTransferEncoding(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
