package vbox

import (
	"os"
	"path/filepath"
	"testing"
)

func mustVersion(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The minimum Vagrant per VirtualBox (hashicorp/vagrant CHANGELOG.md).
func TestMinVagrant(t *testing.T) {
	tests := []struct{ vbox, goos, want string }{
		{"6.0.12r133076", "linux", ""},
		{"6.1.50r161033", "linux", "2.2.7"},
		{"6.1.50r161033", "darwin", "2.2.7"},
		{"7.0.14r161095", "linux", "2.3.2"},
		{"7.0.14r161095", "windows", "2.3.2"},
		{"7.0.14r161095", "darwin", "2.3.3"},
		{"7.1.4r165100", "linux", "2.4.2"},
		{"7.1.4r165100", "darwin", "2.4.2"},
		{"7.2.0r170228", "windows", "2.4.9"},
		{"8.0.0r170000", "linux", ""},
	}
	for _, tt := range tests {
		if got := mustVersion(t, tt.vbox).MinVagrant(tt.goos); got != tt.want {
			t.Errorf("%s on %s: MinVagrant = %q, want %q", tt.vbox, tt.goos, got, tt.want)
		}
	}
}

// networks.conf where Vagrant's validate_hostonly_ip! enforces it.
func TestEnforcesNetworksConf(t *testing.T) {
	tests := []struct {
		vbox, goos string
		want       bool
	}{
		{"6.1.26r145957", "linux", false},
		{"6.1.28r147628", "linux", true},
		{"7.0.14r161095", "linux", true},
		{"7.0.14r161095", "windows", false},
		{"6.1.50r161033", "windows", false},
		{"6.1.50r161033", "darwin", true},
		{"7.0.0r153978", "darwin", false},
		{"7.2.0r170228", "darwin", false},
		{"7.0.14r161095", "freebsd", true},
	}
	for _, tt := range tests {
		v := mustVersion(t, tt.vbox)
		if got := v.EnforcesNetworksConf(tt.goos); got != tt.want {
			t.Errorf("%s on %s: EnforcesNetworksConf = %v, want %v", tt.vbox, tt.goos, got, tt.want)
		}
		if got, want := v.UsesHostOnlyNets(tt.goos), tt.goos == "darwin" && v.Major >= 7; got != want {
			t.Errorf("%s on %s: UsesHostOnlyNets = %v, want %v", tt.vbox, tt.goos, got, want)
		}
	}
}

func TestFindVBoxManage(t *testing.T) {
	base := t.TempDir()
	onPath := filepath.Join(base, "bin")
	msi := filepath.Join(base, "Oracle", "VirtualBox")
	other := filepath.Join(base, "other")
	for _, d := range []string{onPath, msi, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(onPath, "VBoxManage"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(msi, "VBoxManage.exe"), []byte("MZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file without the execute bit is not found on PATH (outside Windows).
	if err := os.WriteFile(filepath.Join(other, "VBoxManage"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		goos string
		env  map[string]string
		want string
	}{
		{"override", "linux", map[string]string{"LABCTL_VBOXMANAGE": "/opt/vb/VBoxManage", "PATH": onPath}, "/opt/vb/VBoxManage"},
		{"PATH", "linux", map[string]string{"PATH": other + string(os.PathListSeparator) + onPath}, filepath.Join(onPath, "VBoxManage")},
		{"not on PATH", "linux", map[string]string{"PATH": other, "VBOX_MSI_INSTALL_PATH": msi}, ""},
		{"windows MSI path with trailing backslash", "windows",
			map[string]string{"PATH": base, "SYSTEMDRIVE": base, "VBOX_MSI_INSTALL_PATH": other + ";" + msi + `\`}, msi + "/VBoxManage.exe"},
		{"windows VBOX_INSTALL_PATH wins", "windows",
			map[string]string{"PATH": base, "SYSTEMDRIVE": base, "VBOX_INSTALL_PATH": other, "VBOX_MSI_INSTALL_PATH": msi}, ""},
		{"windows default folder", "windows",
			map[string]string{"PATH": base, "SYSTEMDRIVE": base, "PROGRAMFILES": filepath.Dir(filepath.Dir(msi))}, msi + "/VBoxManage.exe"},
		{"windows nowhere", "windows", map[string]string{"PATH": base, "SYSTEMDRIVE": base}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FindVBoxManage(func(k string) string { return tt.env[k] }, tt.goos)
			if got != tt.want {
				t.Fatalf("FindVBoxManage = %q, want %q", got, tt.want)
			}
		})
	}
}
