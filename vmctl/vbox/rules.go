package vbox

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-version"
)

// The rules below are Vagrant's (hashicorp/vagrant @ v2.4.9), shared with
// the Vagrantfile's host side, scripts/vbox_host.rb; scripts/vbox_host_test.go
// checks that both give the same answers.

// vagrantForVBox is the Vagrant release that first drives each VirtualBox
// minor (its driver enters plugins/providers/virtualbox/driver/meta.rb's
// driver_map; an older Vagrant refuses the provider). CHANGELOG.md: 2.2.7
// GH-11250 (6.1), 2.3.2 GH-12947 (7.0), 2.4.2 GH-13513 (7.1), 2.4.9
// GH-13709 (7.2).
var vagrantForVBox = map[[2]int]string{
	{6, 1}: "2.2.7",
	{7, 0}: "2.3.2",
	{7, 1}: "2.4.2",
	{7, 2}: "2.4.9",
}

// vagrantForVBox7Darwin: private networks on macOS with VirtualBox 7 work
// from 2.3.3 (CHANGELOG: "Fix `:private_network` support for VirtualBox 7
// on macOS [GH-12983]").
const vagrantForVBox7Darwin = "2.3.3"

// MinVagrant is the oldest Vagrant that drives this VirtualBox on goos (a
// runtime.GOOS value), or "" when labctl knows none (before 6.1, or newer
// than the table: Vagrant's own check decides).
func (v Version) MinVagrant(goos string) string {
	min := vagrantForVBox[[2]int{v.Major, v.Minor}]
	if min != "" && goos == "darwin" && v.Major >= 7 &&
		version.Must(version.NewVersion(min)).LessThan(version.Must(version.NewVersion(vagrantForVBox7Darwin))) {
		min = vagrantForVBox7Darwin
	}
	return min
}

// EnforcesNetworksConf reports whether host-only addresses must lie in
// /etc/vbox/networks.conf on goos, as Vagrant decides it
// (plugins/providers/virtualbox/action/network.rb validate_hostonly_ip!):
// VirtualBox >= 6.1.28, not on Windows, not on macOS with VirtualBox >= 7
// (host-only networks there, see UsesHostOnlyNets).
func (v Version) EnforcesNetworksConf(goos string) bool {
	switch {
	case !v.AtLeast(6, 1, 28):
		return false
	case goos == "windows":
		return false
	case goos == "darwin" && v.AtLeast(7, 0, 0):
		return false
	}
	return true
}

// UsesHostOnlyNets reports whether Vagrant attaches private networks to
// VirtualBox 7 host-only networks (`hostonlynet`) rather than vboxnetN
// interfaces: macOS with VirtualBox >= 7 (driver/version_7_0.rb
// use_host_only_nets?).
func (v Version) UsesHostOnlyNets(goos string) bool {
	return goos == "darwin" && v.Major >= 7
}

// FindVBoxManage finds VBoxManage as Vagrant does (driver/base.rb
// initialize): $LABCTL_VBOXMANAGE, then PATH; on Windows then each
// ";"-separated folder of VBOX_INSTALL_PATH, else VBOX_MSI_INSTALL_PATH
// (the VirtualBox installer sets it), then the default install folders.
// "" when not found.
func FindVBoxManage(getenv func(string) string, goos string) string {
	if p := getenv("LABCTL_VBOXMANAGE"); p != "" {
		return p
	}
	exts := []string{""}
	if goos == "windows" {
		exts = append(exts, ".exe")
		for _, e := range strings.Split(getenv("PATHEXT"), ";") {
			if e != "" && !strings.EqualFold(e, ".exe") {
				exts = append(exts, strings.ToLower(e))
			}
		}
	}
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if dir == "" {
			continue
		}
		for _, ext := range exts {
			if p := filepath.Join(dir, "VBoxManage"+ext); isExecutable(p, goos) {
				return p
			}
		}
	}
	if goos != "windows" {
		return ""
	}
	for _, p := range windowsCandidates(getenv) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// windowsCandidates are the VBoxManage.exe paths Vagrant tries after PATH.
func windowsCandidates(getenv func(string) string) []string {
	list := getenv("VBOX_INSTALL_PATH")
	if list == "" {
		list = getenv("VBOX_MSI_INSTALL_PATH")
	}
	dirs := strings.Split(list, ";")
	drive := getenv("SYSTEMDRIVE")
	if drive == "" {
		drive = "C:"
	}
	dirs = append(dirs, drive+"/Program Files/Oracle/VirtualBox", drive+"/Program Files (x86)/Oracle/VirtualBox")
	if pf := getenv("PROGRAMFILES"); pf != "" {
		dirs = append(dirs, pf+"/Oracle/VirtualBox")
	}
	var out []string
	for _, d := range dirs {
		// The installer writes the folder with a trailing backslash.
		d = strings.TrimRight(d, `\/`)
		if d != "" {
			out = append(out, d+"/VBoxManage.exe")
		}
	}
	return out
}

// isExecutable: Windows has no execute bit; the extension decides there.
func isExecutable(p, goos string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (goos == "windows" || st.Mode().Perm()&0o111 != 0)
}
