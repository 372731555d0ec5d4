package doctor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"

	"github.com/labctl/labctl/vmctl/vbox"
)

// Host check ids, in the order CheckHost reports them.
const (
	CheckVBoxVersion     = "virtualbox-version"
	CheckNetworksConf    = "networks-conf"
	CheckVM              = "vm"
	CheckNestedHWVirt    = "nested-hw-virt"
	CheckHostOnlyAdapter = "hostonly-adapter"
	CheckPromiscPolicy   = "promisc-policy"
	CheckHostOnlyAddress = "hostonly-address"
	CheckVBoxDHCP        = "vbox-dhcp-server"
	CheckRoute           = "route"
)

// HostConfig is what the host layer checks against.
type HostConfig struct {
	// VM is the VirtualBox VM name or UUID (the Vagrantfile names it
	// "labctl-dom0" unless LABCTL_VM_NAME says otherwise).
	VM string
	// Subnet is the host-only network (192.168.77.0/24).
	Subnet netip.Prefix
	// HostAddr is the host's end (default: first address, .1).
	HostAddr netip.Addr
	// Dom0Addr is dom0's address (default: second address, .2); the route
	// check looks up the route to it.
	Dom0Addr netip.Addr
	// Adapter is the VM's host-only adapter number (default 2).
	Adapter int
	// NetworksConf defaults to /etc/vbox/networks.conf.
	NetworksConf string
}

// HostDeps are the host layer's sources.
type HostDeps struct {
	VBox vbox.VBox
	// ReadNetworksConf defaults to vbox.ReadNetworksConf.
	ReadNetworksConf func(path string) (vbox.NetworksConf, error)
	Net              NetLister
	Log              *slog.Logger
}

func (c *HostConfig) defaults() error {
	if c.VM == "" {
		return errors.New("doctor host checks: no VM name")
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() {
		return fmt.Errorf("doctor host checks: subnet %v is not an IPv4 prefix", c.Subnet)
	}
	c.Subnet = c.Subnet.Masked()
	if !c.HostAddr.IsValid() {
		c.HostAddr = c.Subnet.Addr().Next()
	}
	if !c.Dom0Addr.IsValid() {
		c.Dom0Addr = c.Subnet.Addr().Next().Next()
	}
	if c.Adapter == 0 {
		c.Adapter = 2
	}
	if c.NetworksConf == "" {
		c.NetworksConf = vbox.NetworksConfPath
	}
	return nil
}

// hostRun carries what earlier checks learned to later ones.
type hostRun struct {
	ctx     context.Context
	cfg     HostConfig
	deps    HostDeps
	out     []Finding
	version vbox.Version
	haveVer bool
	vm      vbox.MachineInfo
	haveVM  bool
	// iface is the host-only interface (or 7.x network) of the adapter, or
	// the one holding the subnet when the adapter is not host-only.
	iface    string
	netName  string // its internal network name, for DHCP servers
	isHONet  bool   // a 7.x host-only network rather than an interface
	ifPrefix netip.Prefix
}

func (r *hostRun) add(f Finding) {
	f.Layer = LayerHost
	r.out = append(r.out, f)
	r.deps.Log.DebugContext(r.ctx, "finding", "check", f.Check, "status", f.Status, "detail", f.Detail)
}

// CheckHost runs the host layer's checks: VirtualBox's version against
// networks.conf, the VM's host-only adapter, its promiscuous policy and
// nested-hw-virt, the host-only interface's address, VirtualBox's DHCP
// server on that network, and the host's route to dom0. A check whose
// input is missing (no VirtualBox, no VM) is left out rather than guessed.
func CheckHost(ctx context.Context, deps HostDeps, cfg HostConfig) ([]Finding, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if deps.VBox == nil || deps.Net == nil {
		return nil, errors.New("doctor host checks: VBox and Net are required")
	}
	if deps.ReadNetworksConf == nil {
		deps.ReadNetworksConf = vbox.ReadNetworksConf
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	r := &hostRun{ctx: ctx, cfg: cfg, deps: deps}
	r.checkVersion()
	if r.haveVer {
		r.checkNetworksConf()
		r.checkVM()
	}
	if r.haveVM {
		r.checkNestedHWVirt()
		r.checkAdapter()
		r.checkPromisc()
	}
	if r.haveVer {
		r.checkHostOnlyAddress()
		r.checkDHCP()
	}
	r.checkRoute()
	return r.out, nil
}

func (r *hostRun) checkVersion() {
	v, err := r.deps.VBox.Version(r.ctx)
	if err != nil {
		r.add(Finding{Check: CheckVBoxVersion, Status: StatusFail,
			Detail:  err.Error(),
			Meaning: "VBoxManage does not run or prints no version, so no VirtualBox setting can be checked",
			Fix:     "VBoxManage --version  # install VirtualBox >= 6.1 (or load its kernel module: sudo /sbin/vboxconfig) until this prints a version"})
		return
	}
	r.version, r.haveVer = v, true
	if !v.AtLeast(6, 1, 0) {
		r.add(Finding{Check: CheckVBoxVersion, Status: StatusWarn,
			Detail:  "VirtualBox " + v.Raw,
			Meaning: "VirtualBox before 6.1 cannot pass VT-x through on Intel hosts (nested-hw-virt), which Mirage's PVH guests need",
			Fix:     "upgrade VirtualBox to 6.1 or later"})
		return
	}
	r.add(Finding{Check: CheckVBoxVersion, Status: StatusOK, Detail: "VirtualBox " + v.Raw})
}

func (r *hostRun) checkNetworksConf() {
	subnet := r.cfg.Subnet
	if !r.version.RestrictsHostOnlyRanges() {
		r.add(Finding{Check: CheckNetworksConf, Status: StatusOK,
			Detail: fmt.Sprintf("VirtualBox %s on %s does not restrict host-only ranges to networks.conf (only 6.1.28 and later do, and not on Windows or on macOS with 7.x)", r.version, runtime.GOOS)})
		return
	}
	nc, err := r.deps.ReadNetworksConf(r.cfg.NetworksConf)
	if err != nil {
		r.add(Finding{Check: CheckNetworksConf, Status: StatusFail,
			Detail:  err.Error(),
			Meaning: "VirtualBox " + r.version.String() + " reads this file to decide which host-only addresses it allows; it cannot be read or parsed",
			Fix:     vbox.FixLine(subnet)})
		return
	}
	if rng, ok := nc.AllowsPrefix(subnet); ok {
		where := fmt.Sprintf("%s line %d", r.cfg.NetworksConf, rng.Line)
		if !nc.Present {
			where = fmt.Sprintf("VirtualBox's default range %s (no %s)", rng.Prefix, r.cfg.NetworksConf)
		}
		r.add(Finding{Check: CheckNetworksConf, Status: StatusOK, Detail: fmt.Sprintf("%s allowed by %s", subnet, where)})
		return
	}
	var ranges []string
	for _, rg := range nc.Effective() {
		ranges = append(ranges, rg.Prefix.String())
	}
	src := r.cfg.NetworksConf
	if !nc.Present {
		src = "defaults, no " + src
	}
	r.add(Finding{Check: CheckNetworksConf, Status: StatusFail,
		Detail: fmt.Sprintf("VirtualBox %s allows host-only addresses only in %s (%s); %s is not among them",
			r.version, strings.Join(ranges, " "), src, subnet),
		Meaning: "VirtualBox refuses to configure the host-only interface for the lab subnet: `vagrant up` fails, or the host end gets no address",
		Fix:     vbox.FixLine(subnet)})
}

func (r *hostRun) checkVM() {
	mi, err := r.deps.VBox.ShowVMInfo(r.ctx, r.cfg.VM)
	if errors.Is(err, vbox.ErrVMNotFound) {
		r.add(Finding{Check: CheckVM, Status: StatusFail,
			Detail:  fmt.Sprintf("VirtualBox has no VM named %q", r.cfg.VM),
			Meaning: "the lab VM is not created (or has another name: set LABCTL_VM_NAME); its adapter checks are skipped",
			Fix:     "vagrant up"})
		return
	}
	if err != nil {
		r.add(Finding{Check: CheckVM, Status: StatusFail, Detail: err.Error(),
			Meaning: "the VM's settings cannot be read; its adapter checks are skipped"})
		return
	}
	r.vm, r.haveVM = mi, true
	if !mi.Running() {
		r.add(Finding{Check: CheckVM, Status: StatusWarn,
			Detail:  fmt.Sprintf("VM %q is %s", r.cfg.VM, mi.VMState()),
			Meaning: "the lab is down: the host-only interface has no carrier and nothing answers on the lab subnet",
			Fix:     "vagrant up"})
		return
	}
	r.add(Finding{Check: CheckVM, Status: StatusOK, Detail: fmt.Sprintf("VM %q is %s", r.cfg.VM, mi.VMState())})
}

// whilePoweredOff wraps a modifyvm command: it needs the VM off.
func (r *hostRun) whilePoweredOff(cmd string) string {
	if r.vm.Running() {
		return "vagrant halt && " + cmd + " && vagrant up"
	}
	return cmd
}

func (r *hostRun) checkNestedHWVirt() {
	vm := shellQuote(r.cfg.VM)
	on, known := r.vm.NestedHWVirt()
	switch {
	case !known:
		r.add(Finding{Check: CheckNestedHWVirt, Status: StatusWarn,
			Detail:  "showvminfo --machinereadable has no nested-hw-virt key",
			Meaning: "this VirtualBox cannot pass VT-x/AMD-V to the VM; Xen then lacks hvm in virt_caps and cannot boot PVH guests (Mirage >= 3.9)",
			Fix:     "upgrade VirtualBox to 6.1 or later"})
	case !on:
		r.add(Finding{Check: CheckNestedHWVirt, Status: StatusFail,
			Detail:  "nested-hw-virt=\"off\"",
			Meaning: "Xen in the VM sees no VT-x/AMD-V: `xl info` virt_caps lacks hvm and Mirage's PVH guests cannot boot",
			Fix:     r.whilePoweredOff("VBoxManage modifyvm " + vm + " --nested-hw-virt on")})
	default:
		r.add(Finding{Check: CheckNestedHWVirt, Status: StatusOK, Detail: "nested-hw-virt=\"on\""})
	}
}

func (r *hostRun) checkAdapter() {
	n := r.cfg.Adapter
	nic, ok := r.vm.NIC(n)
	if ok && nic.HostOnly() {
		r.iface, r.isHONet = nic.HostOnlyName(), nic.HostOnlyNetwork != "" && nic.HostOnlyAdapter == ""
		r.add(Finding{Check: CheckHostOnlyAdapter, Status: StatusOK,
			Detail: fmt.Sprintf("adapter %d is %s on %s", n, nic.Type, r.iface)})
		return
	}
	typ := "absent"
	if ok {
		typ = nic.Type
	}
	ifc := "vboxnetN"
	if name, _ := r.findSubnetInterface(); name != "" {
		ifc = name
	}
	r.add(Finding{Check: CheckHostOnlyAdapter, Status: StatusFail,
		Detail:  fmt.Sprintf("adapter %d is %s, not host-only", n, typ),
		Meaning: fmt.Sprintf("dom0's eth%d is not on the host-only network: the host cannot reach dom0 or its guests on %s", n-1, r.cfg.Subnet),
		Fix: r.whilePoweredOff(fmt.Sprintf("VBoxManage modifyvm %s --nic%d hostonly --hostonlyadapter%d %s",
			shellQuote(r.cfg.VM), n, n, ifc))})
}

func (r *hostRun) checkPromisc() {
	n := r.cfg.Adapter
	vm := shellQuote(r.cfg.VM)
	fix := fmt.Sprintf("VBoxManage modifyvm %s --nicpromisc%d allow-all", vm, n)
	if r.vm.Running() {
		fix = fmt.Sprintf("VBoxManage controlvm %s nicpromisc%d allow-all", vm, n)
	}
	nics, err := r.deps.VBox.NICLines(r.ctx, r.cfg.VM)
	if err != nil {
		r.add(Finding{Check: CheckPromiscPolicy, Status: StatusFail, Detail: err.Error(),
			Meaning: "the promiscuous policy is only printed by the human-readable showvminfo, which failed"})
		return
	}
	line, ok := vbox.FindNICLine(nics, n)
	if !ok || line.Disabled {
		r.add(Finding{Check: CheckPromiscPolicy, Status: StatusFail,
			Detail:  fmt.Sprintf("showvminfo has no enabled NIC %d", n),
			Meaning: "there is no adapter whose promiscuous policy could let the guests' frames through"})
		return
	}
	if line.PromiscPolicy == "allow-all" {
		r.add(Finding{Check: CheckPromiscPolicy, Status: StatusOK,
			Detail: fmt.Sprintf("NIC %d Promisc Policy: allow-all", n)})
		return
	}
	policy := line.PromiscPolicy
	if policy == "" {
		policy = "(not printed)"
	}
	r.add(Finding{Check: CheckPromiscPolicy, Status: StatusFail,
		Detail: fmt.Sprintf("NIC %d Promisc Policy: %s", n, policy),
		Meaning: "VirtualBox hands dom0's adapter only frames for its own MAC: frames for the guests' Xen MACs behind br0 are dropped, " +
			"so the host sees ARP but never reaches a guest (the article's lost hours)",
		Fix: fix})
}

// findSubnetInterface finds the host-only interface (or 7.x network)
// whose network is the lab subnet.
func (r *hostRun) findSubnetInterface() (string, netip.Prefix) {
	ifs, err := r.deps.VBox.HostOnlyIfs(r.ctx)
	if err == nil {
		for _, h := range ifs {
			if p := h.Prefix(); p.IsValid() && p.Masked() == r.cfg.Subnet {
				return h.Name, p
			}
		}
	}
	return "", netip.Prefix{}
}

func (r *hostRun) checkHostOnlyAddress() {
	name := r.iface
	if name == "" {
		name, _ = r.findSubnetInterface()
	}
	if name == "" {
		r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusFail,
			Detail:  fmt.Sprintf("no VirtualBox host-only interface has an address in %s", r.cfg.Subnet),
			Meaning: "the host has no end on the lab network (Vagrant creates it with the VM's private_network)",
			Fix:     "vagrant up"})
		return
	}
	var prefix netip.Prefix
	found := false
	if r.isHONet {
		nets, err := r.deps.VBox.HostOnlyNets(r.ctx)
		if err != nil {
			r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusFail, Detail: err.Error()})
			return
		}
		for _, n := range nets {
			if n.Name == name {
				prefix, r.netName, found = n.Prefix(), n.VBoxNetworkName, true
			}
		}
	} else {
		ifs, err := r.deps.VBox.HostOnlyIfs(r.ctx)
		if err != nil {
			r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusFail, Detail: err.Error()})
			return
		}
		for _, h := range ifs {
			if h.Name == name {
				prefix, r.netName, found = h.Prefix(), h.VBoxNetworkName, true
			}
		}
	}
	r.iface = name
	if !found {
		r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusFail,
			Detail:  fmt.Sprintf("VirtualBox lists no host-only interface or network %q", name),
			Meaning: "the VM's adapter points at a host-only interface that no longer exists",
			Fix:     "vagrant reload"})
		return
	}
	r.ifPrefix = prefix
	fix := fmt.Sprintf("VBoxManage hostonlyif ipconfig %s --ip %s --netmask %s", shellQuote(name), r.cfg.HostAddr, maskString(r.cfg.Subnet))
	if r.isHONet {
		fix = fmt.Sprintf("VBoxManage hostonlynet modify --name %s --netmask %s --lower-ip %s --upper-ip %s",
			shellQuote(name), maskString(r.cfg.Subnet), r.cfg.Subnet.Addr(), r.cfg.Subnet.Addr())
	}
	switch {
	case !prefix.IsValid() || prefix.Masked() != r.cfg.Subnet:
		r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusFail,
			Detail:  fmt.Sprintf("%s has %v, not an address in %s", name, prefixOrNone(prefix), r.cfg.Subnet),
			Meaning: "the host's end of the host-only network is on another subnet: the host cannot reach dom0 or the guests",
			Fix:     fix})
	case !r.isHONet && prefix.Addr() != r.cfg.HostAddr:
		r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusWarn,
			Detail:  fmt.Sprintf("%s has %s; labctl expects %s", name, prefix, r.cfg.HostAddr),
			Meaning: "the subnet is right but the host's address differs from the lab spec; a guest or dom0 may hold it",
			Fix:     fix})
	default:
		r.add(Finding{Check: CheckHostOnlyAddress, Status: StatusOK, Detail: fmt.Sprintf("%s has %s", name, prefix)})
	}
}

func (r *hostRun) checkDHCP() {
	srvs, err := r.deps.VBox.DHCPServers(r.ctx)
	if err != nil {
		r.add(Finding{Check: CheckVBoxDHCP, Status: StatusFail, Detail: err.Error(),
			Meaning: "VirtualBox's DHCP servers cannot be listed, so one may still answer on the lab network"})
		return
	}
	netName := r.netName
	if netName == "" && r.iface != "" && !r.isHONet {
		netName = vbox.HostOnlyNetworkPrefix + r.iface
	}
	var on, off []vbox.DHCPServer
	for _, s := range srvs {
		// By network name, and by address: a server left behind for a
		// removed vboxnetN comes back when Vagrant recreates that name.
		if (netName != "" && s.NetworkName == netName) || (s.Prefix().IsValid() && s.Prefix().Overlaps(r.cfg.Subnet)) {
			if s.Enabled {
				on = append(on, s)
			} else {
				off = append(off, s)
			}
		}
	}
	if len(on) == 0 {
		detail := fmt.Sprintf("no VirtualBox DHCP server on %s", r.cfg.Subnet)
		if len(off) > 0 {
			detail = fmt.Sprintf("VirtualBox DHCP server %s exists but is disabled", off[0].NetworkName)
		}
		r.add(Finding{Check: CheckVBoxDHCP, Status: StatusOK, Detail: detail})
		return
	}
	for _, s := range on {
		flag := "--network=" + s.NetworkName
		if !r.version.AtLeast(6, 1, 0) {
			flag = "--netname " + shellQuote(s.NetworkName)
		} else {
			flag = shellQuote(flag)
		}
		r.add(Finding{Check: CheckVBoxDHCP, Status: StatusFail,
			Detail: fmt.Sprintf("VirtualBox DHCP server %s is enabled (server %s, leases %s-%s)",
				s.NetworkName, s.IP, s.LowerIP, s.UpperIP),
			Meaning: "VirtualBox's own DHCP server answers on the host-only network alongside dom0's dnsmasq: guests may take its lease " +
				"(wrong gateway, address outside labctl's pins). Disable it (or remove it: VBoxManage dhcpserver remove " + flag +
				"), then restart the VM so the running server stops",
			Fix: "VBoxManage dhcpserver modify " + flag + " --disable"})
	}
}

func (r *hostRun) checkRoute() {
	dst := r.cfg.Dom0Addr
	routes, err := r.deps.Net.Routes(r.ctx)
	if err != nil {
		r.add(Finding{Check: CheckRoute, Status: StatusFail, Detail: err.Error(), Meaning: "the host's routes cannot be read"})
		return
	}
	want := r.iface
	if want == "" {
		// Without VirtualBox's answer, accept the interface holding the subnet.
		if ifs, err := r.deps.Net.Interfaces(r.ctx); err == nil {
			for _, i := range ifs {
				for _, a := range i.Addrs {
					if a.Masked() == r.cfg.Subnet {
						want = i.Name
					}
				}
			}
		}
	}
	rt, ok := LookupRoute(routes, dst)
	switch {
	case !ok:
		r.add(Finding{Check: CheckRoute, Status: StatusFail,
			Detail:  fmt.Sprintf("no route to %s", dst),
			Meaning: "the host cannot send anything to the lab: the host-only interface is down or has no address (VM not running?)",
			Fix:     "vagrant up"})
	case want != "" && rt.Dev == want:
		r.add(Finding{Check: CheckRoute, Status: StatusOK, Detail: fmt.Sprintf("%s is reached via %s (%s)", dst, rt.Dev, rt.Dst)})
	case want == "" && !rt.Gateway.IsValid():
		r.add(Finding{Check: CheckRoute, Status: StatusWarn,
			Detail:  fmt.Sprintf("%s is reached via %s (%s)", dst, rt.Dev, rt.Dst),
			Meaning: "no interface holds the lab subnet and VirtualBox did not name its host-only interface, so this route cannot be confirmed"})
	default:
		via := rt.Dev
		if rt.Gateway.IsValid() {
			via = fmt.Sprintf("gateway %s on %s", rt.Gateway, rt.Dev)
		}
		meaning := "traffic for the lab leaves through another network, not the host-only interface"
		fix := "vagrant reload"
		if rt.Dst.Bits() > 0 && rt.Dst.Overlaps(r.cfg.Subnet) {
			meaning = fmt.Sprintf("another network on this host (LAN, VPN, container bridge) uses %s and wins the route: "+
				"the lab is unreachable until one of them moves", rt.Dst)
			fix = "LABCTL_SUBNET=<a free /24, e.g. 10.77.0.0/24> vagrant reload"
		}
		wantS := want
		if wantS == "" {
			wantS = "the host-only interface"
		}
		r.add(Finding{Check: CheckRoute, Status: StatusFail,
			Detail:  fmt.Sprintf("%s is reached via %s (%s), not %s", dst, via, rt.Dst, wantS),
			Meaning: meaning,
			Fix:     fix})
	}
}

func maskString(p netip.Prefix) string {
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(m).String()
}

func prefixOrNone(p netip.Prefix) string {
	if !p.IsValid() {
		return "no IPv4 address"
	}
	return p.String()
}
