package provision

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/labctl/labctl/internal/procs"
	"golang.org/x/sys/unix"
)

// dhcpPortItem checks, before anything changes, that the lab's dnsmasq
// will be able to serve DHCP on the bridge (issue 10: a rival DHCP server
// made provision fail at the dnsmasq step, after forwarding and NAT had
// changed). dnsmasq, in bind-dynamic mode, binds UDP 0.0.0.0:67 to the
// bridge with SO_BINDTODEVICE ("0.0.0.0%br0:67" in `ss -ulpn`); a socket
// on 0.0.0.0:67 bound to no device, or to the bridge, makes that bind fail
// with "failed to bind DHCP server socket: Address already in use"
// (dnsmasq 2.90, seen in dom0 namespaces; a rival bound to another
// device, e.g. with --bind-interfaces on its own link, coexists). So
// preflight tries the same bind and, when it fails, names the holder.
// When the bridge does not exist yet, the trial binds to lo: it then
// collides exactly with rivals bound to no device.
//
// It runs on the calling thread, which is in dom0's namespace.
func (d netSteps) dhcpPortItem(bridgeExists bool) Item {
	dev := d.Spec.Network.Bridge
	if !bridgeExists {
		dev = "lo"
	}
	it := Item{Name: "dhcp port 67", Desired: "free for the lab's dnsmasq on " + d.Spec.Network.Bridge}
	err := trialBindDHCP(dev)
	if err == nil {
		it.Observed, it.OK = it.Desired, true
		return it
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		it.Observed = "cannot tell: " + err.Error()
		return it
	}
	ours := procs.ReadPidfile(d.Dnsmasq().PidPath())
	sockets := udpPortSockets(67)
	// The lab's own dnsmasq holding it is the converged case: look at its
	// descriptors before walking every process's.
	if ours > 0 && holdsSocket(ours, sockets) && procs.Alive(ours, "dnsmasq", "--conf-file="+d.Dnsmasq().ConfPath()) {
		it.Observed, it.OK = it.Desired, true
		return it
	}
	var rivals []string
	for _, pid := range socketHolders(sockets) {
		rivals = append(rivals, d.describeHolder(pid)) // ours too, if it is not the lab's dnsmasq any more
	}
	if len(rivals) == 0 {
		rivals = []string{"a process this one cannot see"}
	}
	it.Observed = "held by " + strings.Join(rivals, "; ")
	return it
}

// trialBindDHCP binds and closes UDP 0.0.0.0:67 on dev, as dnsmasq would.
func trialBindDHCP(dev string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
		return fmt.Errorf("binding to %s: %w", dev, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 67}); err != nil {
		return err
	}
	return nil
}

// describeHolder names a process holding :67 and what to do about it. A
// dnsmasq of labctl's for this lab under another state directory gets its
// own message (issue 10: "same lab under two state directories" used to
// end in "Address already in use").
func (d netSteps) describeHolder(pid int) string {
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	name := strings.TrimSpace(string(comm))
	for _, a := range args {
		conf, ok := strings.CutPrefix(a, "--conf-file=")
		if !ok || filepath.Base(conf) != "dnsmasq.conf" {
			continue
		}
		labDir := filepath.Dir(filepath.Dir(conf)) // <root>/<lab>/dnsmasq/dnsmasq.conf
		if filepath.Base(labDir) == d.Spec.Lab && labDir != d.StateDir {
			return fmt.Sprintf("the dnsmasq (pid %d) of lab %s provisioned from another state directory, %s: use --state-dir %s, or run labctl teardown --lab %s --state-dir %s first",
				pid, d.Spec.Lab, filepath.Dir(labDir), filepath.Dir(labDir), d.Spec.Lab, filepath.Dir(labDir))
		}
	}
	return fmt.Sprintf("%s (pid %d), a DHCP server that would answer on the lab's bridge: stop it, or bind it to its own interface only (dnsmasq: --bind-interfaces --interface=IF)", name, pid)
}

// udpPortSockets lists the IPv4 UDP sockets on port in the calling
// thread's network namespace, as their fd link names ("socket:[inode]").
func udpPortSockets(port int) map[string]bool {
	f, err := os.Open("/proc/thread-self/net/udp")
	if err != nil {
		return nil
	}
	defer f.Close()
	inodes := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
		if len(fs) > 9 && strings.HasSuffix(fs[1], want) {
			inodes["socket:["+fs[9]+"]"] = true
		}
	}
	return inodes
}

// holdsSocket says whether pid has one of sockets open.
func holdsSocket(pid int, sockets map[string]bool) bool {
	if len(sockets) == 0 {
		return false
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && sockets[l] {
			return true
		}
	}
	return false
}

// socketHolders lists the pids that have one of sockets open.
func socketHolders(sockets map[string]bool) []int {
	if len(sockets) == 0 {
		return nil
	}
	procDirs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procDirs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && holdsSocket(pid, sockets) {
			pids = append(pids, pid)
		}
	}
	return pids
}
