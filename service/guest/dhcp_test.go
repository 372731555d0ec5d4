package guest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/labctl/labctl/internal/testenv"
)

func ack(t testing.TB, ip string, lease time.Duration, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.ParseIP(ip)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.ParseIP("198.51.100.1"))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("198.51.100.1"))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lease)),
	}
	for _, o := range opts {
		mods = append(mods, dhcpv4.WithOption(o))
	}
	m, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name         string
		ack          *dhcpv4.DHCPv4
		unit         time.Duration
		t1, expiry   time.Duration
		wantInfinite bool
	}{
		{"half the lease", ack(t, "198.51.100.23", time.Hour), time.Second, 30 * time.Minute, time.Hour, false},
		{"option 58", ack(t, "198.51.100.23", time.Hour, dhcpv4.OptRenewTimeValue(10*time.Minute)), time.Second, 10 * time.Minute, time.Hour, false},
		{"option 58 past the lease", ack(t, "198.51.100.23", time.Hour, dhcpv4.OptRenewTimeValue(2*time.Hour)), time.Second, 30 * time.Minute, time.Hour, false},
		{"scaled for tests", ack(t, "198.51.100.23", 10*time.Second), 10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, false},
		{"infinite", ack(t, "198.51.100.23", time.Duration(math.MaxUint32)*time.Second), time.Second, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t1, exp, inf := schedule(tt.ack, tt.unit)
			if t1 != tt.t1 || exp != tt.expiry || inf != tt.wantInfinite {
				t.Fatalf("schedule = %v, %v, %v; want %v, %v, %v", t1, exp, inf, tt.t1, tt.expiry, tt.wantInfinite)
			}
		})
	}
}

// fakeNet records what the keeper configures.
type fakeNet struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeNet) apply(p netip.Prefix, gw netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "apply "+p.String()+" gw "+gw.String())
	return nil
}

func (f *fakeNet) release() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "release")
	return nil
}

func (f *fakeNet) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// fakeServer hands out leases; renewals answer from a script.
type fakeServer struct {
	t        testing.TB
	mu       sync.Mutex
	lease    time.Duration
	ip       string
	renewals []error // consumed in order; nil = ACK
	requests int
	renews   int
}

func (s *fakeServer) Request(ctx context.Context, onOffer func(*dhcpv4.DHCPv4)) (*nclient4.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	a := ack(s.t, s.ip, s.lease)
	onOffer(a)
	return &nclient4.Lease{Offer: a, ACK: a, CreationTime: time.Now()}, nil
}

func (s *fakeServer) Renew(ctx context.Context, l *nclient4.Lease) (*nclient4.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renews++
	var err error
	if len(s.renewals) > 0 {
		err, s.renewals = s.renewals[0], s.renewals[1:]
	}
	if err != nil {
		return nil, err
	}
	a := ack(s.t, s.ip, s.lease)
	return &nclient4.Lease{Offer: l.Offer, ACK: a, CreationTime: time.Now()}, nil
}

func (s *fakeServer) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.renews
}

func newTestKeeper(ex exchanger, nw configurer, console io.Writer) *leaseKeeper {
	return &leaseKeeper{
		ex: ex, net: nw,
		con:   &consoleWriter{w: console},
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		unit:  10 * time.Millisecond, // a 10 s lease lasts 100 ms
		retry: 10 * time.Millisecond,
	}
}

func TestKeeperRenewsBeforeExpiry(t *testing.T) {
	srv := &fakeServer{t: t, lease: 10 * time.Second, ip: "198.51.100.23"}
	nw := &fakeNet{}
	var con testenv.SyncBuffer
	k := newTestKeeper(srv, nw, &con)
	if err := k.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 280*time.Millisecond)
	defer cancel()
	if err := k.keep(ctx); err != nil {
		t.Fatal(err)
	}
	req, ren := srv.counts()
	// T1 = 50 ms of a 100 ms lease: renewals near 50, 100, 150, 200, 250 ms.
	if req != 1 || ren < 3 || ren > 6 {
		t.Fatalf("%d discoveries, %d renewals in 280 ms; want 1 and about 5", req, ren)
	}
	for _, e := range nw.log() {
		if e == "release" {
			t.Fatalf("address released although renewals succeeded: %v", nw.log())
		}
	}
	out := con.String()
	for _, want := range []string{
		"DHCP: start discovery",
		"DHCP: offer received: 198.51.100.23",
		"DHCP options: Offer : Routers(198.51.100.1), Subnet mask(255.255.255.0), Lease time(10), Server identifier(198.51.100.1)",
		"DHCP offer received and bound to 198.51.100.23 nm 255.255.255.0 gw [198.51.100.1]",
		"DHCP: lease renewed: 198.51.100.23",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

func TestKeeperRetriesThenRediscovers(t *testing.T) {
	down := errors.New("no response")
	srv := &fakeServer{t: t, lease: 10 * time.Second, ip: "198.51.100.23",
		renewals: []error{down, down, down, down, down, down, down, down, down, down}}
	nw := &fakeNet{}
	var con testenv.SyncBuffer
	k := newTestKeeper(srv, nw, &con)
	if err := k.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := k.keep(ctx); err != nil {
		t.Fatal(err)
	}
	req, ren := srv.counts()
	if ren < 2 || req < 2 {
		t.Fatalf("%d renewals, %d discoveries: want retries, then a new discovery at expiry", ren, req)
	}
	ev := nw.log()
	if len(ev) < 3 || ev[1] != "release" || !strings.HasPrefix(ev[2], "apply 198.51.100.23/24") {
		t.Fatalf("events %v: want apply, release at expiry, apply", ev)
	}
	if !strings.Contains(con.String(), "DHCP: renew failed") || !strings.Contains(con.String(), "DHCP: lease lost") {
		t.Fatalf("console:\n%s", con.String())
	}
}

func TestKeeperNakRediscovers(t *testing.T) {
	nak := &nclient4.ErrNak{Nak: ack(t, "0.0.0.0", time.Hour)}
	srv := &fakeServer{t: t, lease: 10 * time.Second, ip: "198.51.100.23", renewals: []error{nak}}
	nw := &fakeNet{}
	k := newTestKeeper(srv, nw, io.Discard)
	if err := k.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	if err := k.keep(ctx); err != nil {
		t.Fatal(err)
	}
	// The NAK at T1 (50 ms) is followed at once by a new discovery,
	// without waiting for expiry at 100 ms.
	if req, _ := srv.counts(); req != 2 {
		t.Fatalf("%d discoveries, want 2", req)
	}
	if ev := nw.log(); len(ev) != 3 || ev[1] != "release" {
		t.Fatalf("events %v", ev)
	}
}

type failingServer struct{ n int }

func (f *failingServer) Request(ctx context.Context, _ func(*dhcpv4.DHCPv4)) (*nclient4.Lease, error) {
	f.n++
	return nil, errors.New("no offer")
}

func (f *failingServer) Renew(context.Context, *nclient4.Lease) (*nclient4.Lease, error) {
	return nil, errors.New("unused")
}

func TestAcquireBoundedByCtx(t *testing.T) {
	srv := &failingServer{}
	k := newTestKeeper(srv, &fakeNet{}, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := k.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire = %v", err)
	}
	if srv.n < 2 || srv.n > 6 {
		t.Fatalf("%d attempts in 100 ms with 10 ms doubling backoff", srv.n)
	}
}

func TestBindIgnoresOffLinkRouter(t *testing.T) {
	nw := &fakeNet{}
	k := newTestKeeper(nil, nw, io.Discard)
	a := ack(t, "198.51.100.23", time.Hour, dhcpv4.OptRouter(net.ParseIP("203.0.113.1")))
	if err := k.bind(&nclient4.Lease{ACK: a, Offer: a}, false); err != nil {
		t.Fatal(err)
	}
	if ev := nw.log(); len(ev) != 1 || ev[0] != "apply 198.51.100.23/24 gw invalid IP" {
		t.Fatalf("events %v", ev)
	}
	bad := ack(t, "0.0.0.0", time.Hour)
	if err := k.bind(&nclient4.Lease{ACK: bad, Offer: bad}, false); err == nil {
		t.Fatal("bound 0.0.0.0")
	}
}
