package main

// A stand-in for Xen's xl, so the xen runtime's whole path runs on the
// simulated lab: `xl create` boots the reference guest in a namespace of
// its own, linked into dom0's bridge as vif<domid>.0 with the MAC the .xl
// asks for, reading the users image the .xl names as xvdb. The test binary
// plays xl when LABCTL_FAKE_XL=1 (see TestMain); domains are JSON files in
// LABCTL_FAKE_XL_DIR.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/labctl/vmctl"
)

type fakeDomain struct {
	Name, Kernel, Image, Bridge, MAC, Extra string
	DomID, MemoryMB                         int
}

func fakeXLMain(args []string) int {
	dir, lab := os.Getenv("LABCTL_FAKE_XL_DIR"), os.Getenv("LABCTL_FAKE_XL_LAB")
	// The guests this xl boots are this binary as labctl, not as xl.
	os.Unsetenv("LABCTL_FAKE_XL")
	if dir == "" || lab == "" || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake xl: LABCTL_FAKE_XL_DIR, LABCTL_FAKE_XL_LAB and a command are required")
		return 2
	}
	// Every call is recorded, so the test can assert the exact argv.
	if f, err := os.OpenFile(filepath.Join(dir, "argv.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		fmt.Fprintln(f, strings.Join(args, " "))
		f.Close()
	}
	x := fakeXL{dir: dir, lab: lab}
	var err error
	switch {
	case args[0] == "info":
		fmt.Print(fakeXLInfo)
	case args[0] == "list" && len(args) == 1:
		err = x.list()
	case args[0] == "list" && len(args) >= 2 && args[1] == "-l":
		err = x.listLong(args[2:])
	case args[0] == "create" && len(args) == 2:
		err = x.create(args[1])
	case args[0] == "destroy" && len(args) == 2:
		err = x.destroy(args[1])
	case args[0] == "console" && len(args) == 2:
		err = x.console(args[1])
	default:
		err = fmt.Errorf("unsupported: xl %s", strings.Join(args, " "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xl:", err)
		return 1
	}
	return 0
}

// From a real xl info (vmctl/xen/testdata), trimmed to what labctl reads.
const fakeXLInfo = `host                   : dom0
release                : 6.1.0-18-amd64
machine                : x86_64
nr_cpus                : 2
total_memory           : 4095
free_memory            : 2911
xen_major              : 4
xen_minor              : 17
xen_extra              : .3-pre
xen_version            : 4.17.3-pre
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64
virt_caps              : pv hvm hvm_directio pv_directio hap shadow
`

type fakeXL struct{ dir, lab string }

func (x fakeXL) domains() ([]fakeDomain, error) {
	ents, err := filepath.Glob(filepath.Join(x.dir, "dom-*.json"))
	if err != nil {
		return nil, err
	}
	var out []fakeDomain
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			return nil, err
		}
		var d fakeDomain
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (x fakeXL) find(name string) (fakeDomain, bool) {
	ds, _ := x.domains()
	for _, d := range ds {
		if d.Name == name {
			return d, true
		}
	}
	return fakeDomain{}, false
}

func (x fakeXL) guest(d fakeDomain) vmctl.GuestSpec {
	exe, _ := os.Executable()
	mac, _ := net.ParseMAC(d.MAC)
	return vmctl.GuestSpec{Lab: x.lab, Name: d.Name, Index: d.DomID, MAC: mac, Bridge: d.Bridge,
		Kernel: exe, Image: d.Image, StateDir: filepath.Join(x.dir, d.Name), Port: 8088}
}

func (x fakeXL) running(d fakeDomain) bool {
	st, err := (&vmctl.Process{Log: discard()}).State(context.Background(), x.guest(d))
	return err == nil && st.Running
}

func (x fakeXL) list() error {
	ds, err := x.domains()
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %5s %5s %5s %10s %9s\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)")
	fmt.Printf("%-40s %5d %5d %5d %10s %9.1f\n", "Domain-0", 0, 1024, 2, "r-----", 12.5)
	for _, d := range ds {
		state := "-b----"
		if !x.running(d) {
			state = "----c-" // what on_crash = 'preserve' leaves
		}
		fmt.Printf("%-40s %5d %5d %5d %10s %9.1f\n", d.Name, d.DomID, d.MemoryMB, 1, state, 0.1)
	}
	return nil
}

func (x fakeXL) listLong(names []string) error {
	ds, err := x.domains()
	if err != nil {
		return err
	}
	type nic struct {
		DevID  int    `json:"devid"`
		MAC    string `json:"mac"`
		Bridge string `json:"bridge"`
	}
	type disk struct {
		PdevPath  string `json:"pdev_path"`
		Vdev      string `json:"vdev"`
		Format    string `json:"format"`
		ReadWrite int    `json:"readwrite"`
	}
	var out []map[string]any
	for _, d := range ds {
		if len(names) > 0 && names[0] != d.Name {
			continue
		}
		out = append(out, map[string]any{"domid": d.DomID, "config": map[string]any{
			"c_info": map[string]any{"type": "pvh", "name": d.Name},
			"b_info": map[string]any{"max_memkb": d.MemoryMB * 1024, "kernel": d.Kernel, "cmdline": d.Extra},
			"disks":  []disk{{PdevPath: d.Image, Vdev: "xvdb", Format: "raw"}},
			"nics":   []nic{{MAC: d.MAC, Bridge: d.Bridge}},
		}})
	}
	if len(names) > 0 && len(out) == 0 {
		return fmt.Errorf("%s is an invalid domain identifier (rc=-6)", names[0])
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

var (
	xlLine = regexp.MustCompile(`^\s*([a-z_]+)\s*=\s*(.*?)\s*$`)
	xlStr  = regexp.MustCompile(`'([^']*)'`)
)

// create reads the .xl the way xl does for the keys labctl writes.
func (x fakeXL) create(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	d := fakeDomain{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := xlLine.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(strings.TrimSpace(sc.Text()), "#") {
			continue
		}
		strs := xlStr.FindAllStringSubmatch(m[2], -1)
		first := func() string {
			if len(strs) > 0 {
				return strs[0][1]
			}
			return ""
		}
		switch m[1] {
		case "name":
			d.Name = first()
		case "kernel":
			d.Kernel = first()
		case "extra":
			d.Extra = first()
		case "memory":
			d.MemoryMB, _ = strconv.Atoi(m[2])
		case "type":
			if first() != "pvh" {
				return fmt.Errorf("%s: type %q: this fake boots pvh only", path, first())
			}
		case "vif":
			for _, kv := range strings.Split(first(), ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				switch k {
				case "bridge":
					d.Bridge = v
				case "mac":
					d.MAC = v
				}
			}
		case "disk":
			for _, kv := range strings.Split(first(), ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				if k == "target" {
					d.Image = v
				}
			}
		}
	}
	if d.Name == "" || d.MAC == "" || d.Bridge == "" || d.Image == "" || d.Kernel == "" {
		return fmt.Errorf("%s: name, kernel, vif bridge/mac and disk target are required: %+v", path, d)
	}
	if _, exists := x.find(d.Name); exists {
		return fmt.Errorf("domain %s already exists", d.Name)
	}
	if _, err := os.Stat(d.Kernel); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	d.DomID = 1
	if b, err := os.ReadFile(filepath.Join(x.dir, "next-domid")); err == nil {
		d.DomID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	os.WriteFile(filepath.Join(x.dir, "next-domid"), []byte(strconv.Itoa(d.DomID+1)), 0o600)
	b, _ := json.Marshal(d)
	if err := os.WriteFile(filepath.Join(x.dir, "dom-"+d.Name+".json"), b, 0o600); err != nil {
		return err
	}
	// The domain's "hardware": a netns, vif<domid>.0 in the bridge, and the
	// reference guest as its kernel.
	return (&vmctl.Process{Log: discard()}).Start(context.Background(), x.guest(d))
}

func (x fakeXL) destroy(name string) error {
	d, ok := x.find(name)
	if !ok {
		return fmt.Errorf("%s is an invalid domain identifier (rc=-6)", name)
	}
	if err := (&vmctl.Process{Log: discard()}).Stop(context.Background(), x.guest(d)); err != nil {
		return err
	}
	return os.Remove(filepath.Join(x.dir, "dom-"+name+".json"))
}

// console follows the guest's output until the domain is gone.
func (x fakeXL) console(name string) error {
	d, ok := x.find(name)
	if !ok {
		return fmt.Errorf("%s is an invalid domain identifier (rc=-6)", name)
	}
	path := filepath.Join(x.guest(d).StateDir, "console.log")
	var off int64
	for {
		if f, err := os.Open(path); err == nil {
			f.Seek(off, io.SeekStart)
			n, _ := io.Copy(os.Stdout, f)
			off += n
			f.Close()
		}
		if _, still := x.find(name); !still {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
