package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
)

// The agent's "doctor" verb: dom0's and the guests' checks, run inside
// dom0. Each finding is streamed as a {"type":"finding"} event (a type
// older hosts skip); the result carries the deployed guests so that the
// host can probe them from its side.

// FindingEvent is one doctor finding in the agent's JSON-lines stream.
type FindingEvent struct {
	Schema  int             `json:"schema"`
	Type    string          `json:"type"` // "finding"
	Finding *doctor.Finding `json:"finding"`
}

// Fix commands the agent writes; the host completes them with its own
// --target, --lab and other flags (it knows how it reached dom0).
const (
	FixProvision = "labctl provision"
	FixDeploy    = "labctl deploy"
)

// doctorProbeTimeout bounds each connect and answer of a guest probe.
const doctorProbeTimeout = 2 * time.Second

// Doctor runs the dom0 and guest layers' checks and writes each finding
// to w. It changes nothing. The result is not OK when a finding failed.
func (d *Dom0) Doctor(ctx context.Context, w io.Writer) GuestsResult {
	enc := json.NewEncoder(w)
	var all []doctor.Finding
	emit := func(fs []doctor.Finding) {
		for i := range fs {
			enc.Encode(FindingEvent{Schema: SchemaVersion, Type: "finding", Finding: &fs[i]})
		}
		all = append(all, fs...)
	}
	emit(doctor.CheckDom0(d.doctorConfig(), d.observeDom0(ctx)))

	gs, err := ReadGuests(d.StateDir)
	r := GuestsResult{Result: Result{Schema: SchemaVersion, Command: "doctor", Lab: d.Spec.Lab, Steps: []StepResult{}}}
	if err != nil {
		emit([]doctor.Finding{{Layer: doctor.LayerGuest, Check: "guests", Status: doctor.StatusFail,
			Detail: err.Error(), Meaning: "the deployed guests' records cannot be read", Fix: FixDeploy}})
	}
	for i, o := range (guestSteps{d}).observeGuests(ctx, gs) {
		g := gs[i]
		emit(doctor.CheckGuest(doctor.GuestConfig{Deploy: FixDeploy,
			Logs: filepath.Join(guestSteps{d}.guestsDir(), "%s", statedir.ConsoleLog) + " on dom0"}, o))
		r.Guests = append(r.Guests, GuestStatus{Name: g.Name, MAC: g.MAC.String(), IP: g.IP.String(), URL: g.URL(),
			State: o.State, Healthy: o.Dom0Probe.OK})
	}
	var failed []string
	for _, f := range all {
		if f.Status == doctor.StatusFail {
			failed = append(failed, strings.TrimSuffix(string(f.Layer)+"/"+f.Check+"/"+f.Subject, "/"))
		}
	}
	r.OK = len(failed) == 0
	if !r.OK {
		r.Error = fmt.Sprintf("%d checks failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return r
}

func (d *Dom0) doctorConfig() doctor.Dom0Config {
	n := d.Spec.Network
	return doctor.Dom0Config{
		Lab: d.Spec.Lab, Bridge: n.Bridge, Uplink: n.Uplink, Address: d.Spec.BridgeAddr(),
		Promiscuous: n.Promiscuous, Runtime: d.Spec.Guests.Runtime, Provision: FixProvision,
		DnsmasqConf: d.Dnsmasq().ConfPath(),
	}
}

// observeDom0 reads everything the dom0 layer checks. Each source keeps
// its own error: one failing read fails its checks only.
func (d *Dom0) observeDom0(ctx context.Context) doctor.Dom0Obs {
	var o doctor.Dom0Obs
	for _, name := range RuntimeNames() {
		if a := runtimeAdapters[name]; a.Doctor != nil {
			o.Runtimes = append(o.Runtimes, doctor.RuntimeObs{Name: name, Findings: a.Doctor(ctx, d)})
		}
	}
	// The same version checks as provision's preflight, through its cache.
	tc := openToolCache(filepath.Dir(d.StateDir), d.readOnly)
	for _, it := range []Item{dnsmasqItem(ctx, tc), (netSteps{&d.network}).iptablesItem(ctx, tc)} {
		o.Tools = append(o.Tools, doctor.ToolObs{Tool: it.Name, Desired: it.Desired, Observed: it.Observed, OK: it.OK})
	}
	tc.save()
	o.Links, o.LinksErr = d.links()
	o.IPForward, o.IPForwardErr = d.Sysctl.Get(ipForward)

	c := d.Dnsmasq()
	st := netsetup.ObserveDnsmasq(c)
	o.DnsmasqPid, o.DnsmasqIfIndex = st.Pid, st.StartIfIndex
	switch {
	case st.ConfOnDisk == nil:
		o.DnsmasqConf = "missing"
	case bytes.Equal(st.ConfOnDisk, c.Render()):
		o.DnsmasqConf = "current"
	default:
		o.DnsmasqConf = "differs"
	}

	o.Sockets, o.Owners, o.SocketsErr = serverSockets()
	o.IPTablesSave, o.IPTablesErr = d.IPT.Save(ctx)
	o.Firewalld, _ = doctor.FindProcs("/proc", "firewalld")
	return o
}

// serverSockets reads this namespace's UDP and TCP sockets on the DHCP
// and DNS ports, and who holds them.
func serverSockets() ([]doctor.Socket, map[uint64][]doctor.Proc, error) {
	var socks []doctor.Socket
	for _, proto := range []string{"udp", "tcp"} {
		// /proc/self/net is the reading process's network namespace:
		// the agent runs wholly inside dom0's.
		b, err := os.ReadFile("/proc/self/net/" + proto)
		if err != nil {
			return nil, nil, fmt.Errorf("dom0 sockets: %w", err)
		}
		ss, err := doctor.ParseProcNetSockets(proto, string(b))
		if err != nil {
			return nil, nil, fmt.Errorf("dom0 sockets: %w", err)
		}
		for _, s := range ss {
			if p := s.Local.Port(); p == 53 || p == 67 {
				socks = append(socks, s)
			}
		}
	}
	inodes := make([]uint64, len(socks))
	for i, s := range socks {
		inodes[i] = s.Inode
	}
	owners, err := doctor.SocketOwners("/proc", inodes)
	if err != nil {
		return nil, nil, fmt.Errorf("dom0 sockets: %w", err)
	}
	return socks, owners, nil
}

// observeGuests probes the guests concurrently, then reads dom0's ARP
// entries (the probes refreshed them).
func (d guestSteps) observeGuests(ctx context.Context, gs []GuestRecord) []doctor.GuestObs {
	out := make([]doctor.GuestObs, len(gs))
	var wg sync.WaitGroup
	for i, g := range gs {
		out[i] = doctor.GuestObs{Name: g.Name, MAC: g.MAC.String(), IP: g.IP.String(), Port: g.Port, Runtime: g.Runtime}
		wg.Add(1)
		go func(o *doctor.GuestObs) {
			defer wg.Done()
			st, err := d.runtime(g).State(ctx, d.guestSpec(g))
			o.Running, o.State, o.StateErr = st.Running, st.State, err
			if _, err := os.Stat(d.Dnsmasq().LeasePath()); err != nil {
				o.LeaseErr = fmt.Errorf("lease file: %w", err)
			} else if l, found := d.leaseOf(g); found {
				o.LeaseIP = l.IP.String()
			}
			target := net.JoinHostPort(g.IP.String(), fmt.Sprint(g.Port))
			o.Dom0Probe = doctor.ProbeResult{From: doctor.LayerDom0, Target: target, Ran: true}
			if err := probe(ctx, g, doctorProbeTimeout, doctorProbeTimeout); err != nil {
				o.Dom0Probe.Detail = err.Error()
			} else {
				o.Dom0Probe.OK, o.Dom0Probe.Detail = true, check.HealthOK
			}
		}(&out[i])
	}
	wg.Wait()
	neigh, err := d.neighbors()
	for i := range out {
		o := &out[i]
		o.NeighborErr = err
		if n, ok := neigh[o.IP]; ok {
			o.NeighborMAC, o.NeighborState = n.HardwareAddr.String(), nudString(n.State)
		}
	}
	return out
}

// neighbors maps IPv4 addresses to dom0's neighbour entries on the bridge.
func (d guestSteps) neighbors() (map[string]netlink.Neigh, error) {
	br, err := d.NL.LinkByName(d.Spec.Network.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", d.Spec.Network.Bridge, err)
	}
	ns, err := d.NL.NeighList(br.Attrs().Index, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("neighbours on %s: %w", d.Spec.Network.Bridge, err)
	}
	out := map[string]netlink.Neigh{}
	for _, n := range ns {
		if n.IP != nil && len(n.HardwareAddr) > 0 {
			out[n.IP.String()] = n
		} else if n.IP != nil {
			// An entry still resolving (or failed) has no MAC yet.
			if _, seen := out[n.IP.String()]; !seen {
				out[n.IP.String()] = n
			}
		}
	}
	return out, nil
}

func nudString(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_PERMANENT, "PERMANENT"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_INCOMPLETE, "INCOMPLETE"},
	}
	for _, n := range names {
		if s&n.bit != 0 {
			return n.name
		}
	}
	return "NONE"
}

// CallDoctor runs the agent's doctor verb on t and returns its result and
// findings. An error means no result arrived (see CallAgent).
func CallDoctor(ctx context.Context, t vmctl.Transport, exe string, req AgentRequest) (*GuestsResult, []doctor.Finding, error) {
	s := &findingSniffer{}
	r, err := CallAgentAs[GuestsResult](ctx, sniffTransport{Transport: t, s: s}, exe, "doctor", req, nil)
	s.flush()
	return r, s.findings, err
}

// LocalDoctor runs the doctor verb in this process (labctl on dom0).
func LocalDoctor(ctx context.Context, req AgentRequest, o Options) (*GuestsResult, []doctor.Finding) {
	s := &findingSniffer{}
	r := ServeAgent(ctx, "doctor", req, o, s).(*GuestsResult)
	s.flush()
	return r, s.findings
}

// sniffTransport copies what the agent writes to a findingSniffer on its
// way to CallAgent, which reads only step and result events.
type sniffTransport struct {
	vmctl.Transport
	s *findingSniffer
}

func (t sniffTransport) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return t.Transport.Run(ctx, argv, stdin, io.MultiWriter(stdout, t.s), stderr)
}

// findingSniffer collects the finding events of a JSON-lines stream.
type findingSniffer struct {
	mu       sync.Mutex
	buf      []byte
	findings []doctor.Finding
}

func (s *findingSniffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		s.line(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	return len(p), nil
}

func (s *findingSniffer) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line(s.buf)
	s.buf = nil
}

func (s *findingSniffer) line(b []byte) {
	var ev FindingEvent
	if json.Unmarshal(b, &ev) == nil && ev.Schema == SchemaVersion && ev.Type == "finding" && ev.Finding != nil {
		s.findings = append(s.findings, *ev.Finding)
	}
}
