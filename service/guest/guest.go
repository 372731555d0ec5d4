// Package guest is the reference guest: what runs inside each sim guest's
// network namespace as `labctl guest`, standing in for the auth unikernel
// the way Mirage's unix target does. It reads the users image, configures
// its interface by DHCP like the unikernel's stack, prints a boot trace
// like the article's console, and serves the auth contract.
package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/labctl/labctl/service/auth"
	"github.com/labctl/labctl/service/users"
)

// Config of one guest.
type Config struct {
	ImagePath string // the users image (the sim's stand-in for xvdb)
	Interface string // default "eth0"
	Port      int    // default auth.Port (8088)
	Hostname  string // optional DHCP host name (option 12)

	// Static, when valid, replaces DHCP (tests, or a lab without dnsmasq);
	// Gateway is then the default route, if valid.
	Static  netip.Prefix
	Gateway netip.Addr

	// LinkWait bounds the wait for the interface to exist and be up (the
	// runtime may move it in after starting the guest); default 10 s.
	LinkWait time.Duration
	// Server limits; zero means auth.DefaultServerConfig().
	Server auth.ServerConfig

	// AllowInitNetns skips the check that Run is in a network namespace of
	// its own (see refuseInitNetns). Off by default: the guest reconfigures
	// its interface and default route, never the host's.
	AllowInitNetns bool
}

func (c *Config) defaults() {
	if c.Interface == "" {
		c.Interface = "eth0"
	}
	if c.Port == 0 {
		c.Port = auth.Port
	}
	if c.LinkWait == 0 {
		c.LinkWait = 10 * time.Second
	}
	if c.Server == (auth.ServerConfig{}) {
		c.Server = auth.DefaultServerConfig()
	}
}

// Run boots the guest and serves until ctx ends, then shuts down cleanly
// (in-flight requests get up to 5 s) and returns nil. console receives the
// boot trace; log receives structured events (user names and outcomes,
// never passwords).
func Run(ctx context.Context, cfg Config, log *slog.Logger, console io.Writer) error {
	cfg.defaults()
	con := &consoleWriter{w: console}
	con.printf("Guest booting... (labctl reference guest, %s, pid %d)", runtime.Version(), os.Getpid())

	if !cfg.AllowInitNetns {
		if err := refuseInitNetns(); err != nil {
			con.printf("Guest: %v", err)
			return err
		}
	}

	handler, nusers, err := loadUsers(cfg.ImagePath, con, log)
	if err != nil {
		return err
	}

	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("guest: netlink: %w", err)
	}
	defer nl.Close()
	ifc := &iface{nl: nl, name: cfg.Interface, con: con, log: log}
	if err := ifc.up(ctx, cfg.LinkWait); err != nil {
		return fmt.Errorf("guest: %w", err)
	}

	keeper, halted, err := configure(ctx, cfg, ifc, con, log)
	if err != nil {
		return err
	}
	if halted {
		return nil
	}

	srv, serveErr, err := startServer(cfg, handler, con, log, nusers)
	if err != nil {
		return err
	}
	return supervise(ctx, srv, serveErr, keeper, con)
}

// loadUsers reads the users image and builds the auth handler on it; it
// also returns the number of users.
func loadUsers(path string, con *consoleWriter, log *slog.Logger) (*auth.Handler, int, error) {
	creds, sum, err := users.ReadImageFile(path)
	if err != nil {
		con.printf("Users: %v", err)
		return nil, 0, fmt.Errorf("guest: %w", err)
	}
	con.printf("Users: image %s: %d users, sha256 %s", path, len(creds), sum[:16])
	handler, err := auth.NewHandler(auth.MapStore(creds), log)
	if err != nil {
		return nil, 0, fmt.Errorf("guest: %w", err)
	}
	return handler, len(creds), nil
}

// configure gives ifc its address: cfg.Static if valid, else a DHCP lease,
// whose keeper it returns. halted reports that ctx ended before a lease
// was bound, which is no error.
func configure(ctx context.Context, cfg Config, ifc *iface, con *consoleWriter, log *slog.Logger) (keeper *leaseKeeper, halted bool, err error) {
	con.printf("Manager: connect")
	con.printf("Manager: configuring")
	if cfg.Static.IsValid() {
		if err := ifc.apply(cfg.Static, cfg.Gateway); err != nil {
			return nil, false, fmt.Errorf("guest: %w", err)
		}
		gw := ""
		if cfg.Gateway.IsValid() {
			gw = cfg.Gateway.String()
		}
		con.printf("IPv4: static %s nm %s gw [%s]", cfg.Static.Addr(), maskString(cfg.Static.Bits()), gw)
	} else {
		keeper = newLeaseKeeper(ifc, cfg.Hostname, con, log)
		if err := keeper.acquire(ctx); err != nil {
			if ctx.Err() != nil {
				con.printf("Guest halted before configuration")
				return nil, true, nil
			}
			return nil, false, fmt.Errorf("guest: %w", err)
		}
	}
	con.printf("Manager: configuration done")
	return keeper, false, nil
}

// startServer listens on cfg.Port and serves handler in the background;
// the server's end arrives on the returned channel.
func startServer(cfg Config, handler *auth.Handler, con *consoleWriter, log *slog.Logger, nusers int) (*http.Server, <-chan error, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return nil, nil, fmt.Errorf("guest: listen on port %d: %w", cfg.Port, err)
	}
	if cfg.Server.MaxConns > 0 {
		ln = auth.LimitListener(ln, cfg.Server.MaxConns)
	}
	srv := auth.NewServer(handler, log, cfg.Server)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	con.printf("HTTP: listening on :%d", cfg.Port)
	log.Info("guest ready", "interface", cfg.Interface, "port", cfg.Port, "users", nusers)
	return srv, serveErr, nil
}

// supervise keeps the lease (if keeper is not nil) while srv serves, until
// ctx ends or either fails, then stops both and returns the failures.
func supervise(ctx context.Context, srv *http.Server, serveErr <-chan error, keeper *leaseKeeper, con *consoleWriter) error {
	keepErr := make(chan error, 1)
	keepCtx, stopKeeper := context.WithCancel(ctx)
	defer stopKeeper()
	if keeper != nil {
		go func() { keepErr <- keeper.keep(keepCtx) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("guest: serve: %w", err)
	case err := <-keepErr:
		runErr = fmt.Errorf("guest: %w", err)
	}
	con.printf("Manager: shutting down")
	stopKeeper()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, fmt.Errorf("guest: shutdown: %w", err))
	}
	con.printf("Guest halted")
	return runErr
}

// refuseInitNetns fails unless this thread is provably in a namespace of
// its own: the guest reconfigures its interface and default route, which
// must never happen to the host. Proof is a namespace other than PID 1's
// or, where /proc/1 is out of reach (containers), a named namespace under
// /run/netns (what `ip netns add` and the sim lab create).
func refuseInitNetns() error {
	cur, err := netns.Get()
	if err != nil {
		return fmt.Errorf("guest: own network namespace: %w", err)
	}
	defer cur.Close()
	if host, err := netns.GetFromPid(1); err == nil {
		defer host.Close()
		if cur.Equal(host) {
			return errors.New("guest: refusing to run in the init network namespace (run it in the guest's netns)")
		}
		return nil
	}
	ents, err := os.ReadDir(namedNetnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("guest: %s: %w", namedNetnsDir, err)
	}
	for _, e := range ents {
		h, err := netns.GetFromPath(filepath.Join(namedNetnsDir, e.Name()))
		if err != nil {
			continue // a stale or foreign entry
		}
		same := cur.Equal(h)
		h.Close()
		if same {
			return nil
		}
	}
	return errors.New("guest: refusing to run: not in a named network namespace and PID 1's is unreadable (set AllowInitNetns to override)")
}

const namedNetnsDir = "/run/netns"

// consoleWriter prints trace lines, each stamped with the seconds since
// boot like a kernel's console, so a slow boot shows where it waited. A
// failing console never stops the guest.
type consoleWriter struct {
	w     io.Writer
	start time.Time
}

func (c *consoleWriter) printf(format string, args ...any) {
	if c.w == nil {
		return
	}
	if c.start.IsZero() {
		c.start = time.Now()
	}
	_, _ = fmt.Fprintf(c.w, "[%8.3f] "+format+"\n", append([]any{time.Since(c.start).Seconds()}, args...)...)
}

func maskString(bits int) string {
	m := net.CIDRMask(bits, 32)
	return net.IP(m).String()
}
