package auth

import (
	"log/slog"
	"net/http"
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
}

// DefaultServerConfig is what the guest uses. WriteTimeout leaves room for
// queued PBKDF2 runs (about 90 ms each at the default cost) under load.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    256 << 10,
	}
}

// NewServer returns an http.Server for h with cfg's limits; the caller
// sets Addr or calls Serve on its own listener.
func NewServer(h http.Handler, log *slog.Logger, cfg ServerConfig) *http.Server {
	return &http.Server{
		Handler:           h,
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
