package vmctl

import (
	"context"
	"net"
)

// DialIn returns a dial function whose sockets are created inside the
// named network namespace (the sim's <lab>-host, say). A socket keeps the
// namespace it was created in, so the connection is usable from any
// goroutine afterwards.
func DialIn(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var dialErr error
		err := inNetns(name, func() error {
			var d net.Dialer
			c, dialErr = d.DialContext(ctx, network, addr)
			return nil
		})
		if err != nil {
			if c != nil {
				c.Close()
			}
			return nil, err
		}
		return c, dialErr
	}
}
