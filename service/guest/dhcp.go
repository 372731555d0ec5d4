package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// exchanger runs DHCP exchanges; the production one opens a raw socket per
// exchange, so no packet socket copies the HTTP traffic while serving.
type exchanger interface {
	// Request does DISCOVER/OFFER/REQUEST/ACK, calling onOffer in between.
	Request(ctx context.Context, onOffer func(*dhcpv4.DHCPv4)) (*nclient4.Lease, error)
	Renew(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error)
}

// configurer applies and removes the leased address.
type configurer interface {
	apply(addr netip.Prefix, gw netip.Addr) error
	release() error
}

type nclientExchanger struct {
	iface string
	mods  []dhcpv4.Modifier
}

func (e nclientExchanger) client() (*nclient4.Client, error) {
	// 0.5+1+2+4 s: a first answer in milliseconds on a healthy link, and
	// under 8 s before an exchange is declared failed and retried.
	c, err := nclient4.New(e.iface, nclient4.WithTimeout(500*time.Millisecond), nclient4.WithRetry(4))
	if err != nil {
		return nil, fmt.Errorf("dhcp client on %s: %w", e.iface, err)
	}
	return c, nil
}

func (e nclientExchanger) Request(ctx context.Context, onOffer func(*dhcpv4.DHCPv4)) (*nclient4.Lease, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	offer, err := c.DiscoverOffer(ctx, e.mods...)
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", e.iface, err)
	}
	onOffer(offer)
	l, err := c.RequestFromOffer(ctx, offer, e.mods...)
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", e.iface, err)
	}
	return l, nil
}

func (e nclientExchanger) Renew(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	nl, err := c.Renew(ctx, l, e.mods...)
	if err != nil {
		return nil, fmt.Errorf("dhcp renew on %s: %w", e.iface, err)
	}
	return nl, nil
}

// leaseKeeper acquires a lease, applies it and renews it at T1 (option 58
// or half the lease), retrying until expiry, after which it drops the
// address and starts over, as RFC 2131 §4.4.5 asks of a client.
type leaseKeeper struct {
	ex    exchanger
	net   configurer
	con   *consoleWriter
	log   *slog.Logger
	unit  time.Duration // one lease second; shortened by tests
	retry time.Duration // first pause after a failed discovery
	lease *nclient4.Lease
	bound time.Time
}

// testLeaseUnit, when set (only by this package's tests, before Run),
// shortens lease seconds so renewals against a real server happen in
// milliseconds.
var testLeaseUnit time.Duration

func newLeaseKeeper(f *iface, hostname string, con *consoleWriter, log *slog.Logger) *leaseKeeper {
	var mods []dhcpv4.Modifier
	if hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(hostname)))
	}
	unit := time.Second
	if testLeaseUnit != 0 {
		unit = testLeaseUnit
	}
	return &leaseKeeper{
		ex:    nclientExchanger{iface: f.name, mods: mods},
		net:   f,
		con:   con,
		log:   log,
		unit:  unit,
		retry: time.Second,
	}
}

// acquire runs discovery until it gets a lease or ctx ends.
func (k *leaseKeeper) acquire(ctx context.Context) error {
	backoff := k.retry
	for {
		k.con.printf("DHCP: start discovery")
		l, err := k.ex.Request(ctx, k.printOffer)
		if err == nil {
			return k.bind(l, false)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		k.con.printf("DHCP: no lease (%v); retrying in %v", err, backoff)
		k.log.Warn("dhcp discovery failed", "err", err, "retry_in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (k *leaseKeeper) printOffer(o *dhcpv4.DHCPv4) {
	k.con.printf("DHCP: offer received: %s", o.YourIPAddr)
	var opts []string
	add := func(name string, v string) {
		if v != "" {
			opts = append(opts, name+"("+v+")")
		}
	}
	add("DNS servers", joinIPs(o.DNS()))
	add("Routers", joinIPs(o.Router()))
	if b := o.BroadcastAddress(); b != nil {
		add("Broadcast", b.String())
	}
	if m := o.SubnetMask(); m != nil {
		add("Subnet mask", net.IP(m).String())
	}
	if o.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		add("Lease time", fmt.Sprint(int64(o.IPAddressLeaseTime(0)/time.Second)))
	}
	if s := o.ServerIdentifier(); s != nil {
		add("Server identifier", s.String())
	}
	k.con.printf("DHCP options: Offer : %s", strings.Join(opts, ", "))
}

func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// bind applies the lease's address and default route.
func (k *leaseKeeper) bind(l *nclient4.Lease, renewal bool) error {
	ack := l.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return fmt.Errorf("dhcp: ACK without an address (yiaddr %v)", ack.YourIPAddr)
	}
	bits := 24
	if m := ack.SubnetMask(); m != nil {
		if ones, size := m.Size(); size == 32 && ones > 0 {
			bits = ones
		}
	}
	prefix := netip.PrefixFrom(ip, bits)
	var gw netip.Addr
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && prefix.Masked().Contains(a) {
			gw = a
			break
		}
	}
	if err := k.net.apply(prefix, gw); err != nil {
		return fmt.Errorf("dhcp: bind %s: %w", prefix, err)
	}
	k.lease, k.bound = l, time.Now()
	gws := ""
	if gw.IsValid() {
		gws = gw.String()
	}
	lt := ack.IPAddressLeaseTime(0)
	if renewal {
		k.con.printf("DHCP: lease renewed: %s for %v", ip, lt)
	} else {
		k.con.printf("DHCP offer received and bound to %s nm %s gw [%s]", ip, maskString(bits), gws)
	}
	k.log.Info("dhcp bound", "address", prefix.String(), "gateway", gws, "lease", lt, "renewal", renewal)
	return nil
}

// schedule returns when to renew and when the lease expires, measured
// from binding; infinite is true for an infinite lease (never renewed).
func schedule(ack *dhcpv4.DHCPv4, unit time.Duration) (t1, expiry time.Duration, infinite bool) {
	lt := ack.IPAddressLeaseTime(0)
	if lt == time.Duration(math.MaxUint32)*time.Second {
		return 0, 0, true
	}
	if lt <= 0 {
		lt = time.Hour // RFC 2131 requires option 51 in an ACK; be lenient
	}
	t1 = ack.IPAddressRenewalTime(0)
	if t1 <= 0 || t1 >= lt {
		t1 = lt / 2
	}
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(unit) / float64(time.Second))
	}
	return scale(t1), scale(lt), false
}

// keep renews the lease until ctx ends; it returns nil then.
func (k *leaseKeeper) keep(ctx context.Context) error {
	for {
		t1, expiry, infinite := schedule(k.lease.ACK, k.unit)
		if infinite {
			<-ctx.Done()
			return nil
		}
		if sleep(ctx, time.Until(k.bound.Add(t1))) != nil {
			return nil
		}
		for {
			l, err := k.ex.Renew(ctx, k.lease)
			if err == nil {
				if err := k.bind(l, true); err != nil {
					return err
				}
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			var nak *nclient4.ErrNak
			left := time.Until(k.bound.Add(expiry))
			if errors.As(err, &nak) || left <= 0 {
				k.con.printf("DHCP: lease lost (%v); restarting discovery", err)
				k.log.Warn("dhcp lease lost", "err", err)
				if err := k.net.release(); err != nil {
					return err
				}
				k.lease = nil
				if err := k.acquire(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				break
			}
			// RFC 2131 §4.4.5: retry at half the remaining time, at least a
			// (lease) second and at most a minute apart.
			wait := min(max(left/2, k.unit), 60*k.unit)
			k.con.printf("DHCP: renew failed (%v); retrying in %v", err, wait.Round(time.Millisecond))
			k.log.Warn("dhcp renew failed", "err", err, "retry_in", wait)
			if sleep(ctx, wait) != nil {
				return nil
			}
		}
	}
}
