package xen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
)

// DomainConfig is the part of one `xl list -l` element labctl compares
// with what it asked for.
type DomainConfig struct {
	DomID    int
	Name     string
	Type     string // c_info.type: "pvh", "hvm", "pv"
	UUID     string
	Kernel   string
	Cmdline  string // b_info.cmdline: the .xl extra= boot arguments
	MaxMemKB int64
	Disks    []DomainDisk
	NICs     []DomainNIC
}

// DomainDisk is one element of config.disks.
type DomainDisk struct {
	Target    string // pdev_path
	Vdev      string
	Format    string
	ReadWrite bool
}

// DomainNIC is one element of config.nics.
type DomainNIC struct {
	DevID  int
	MAC    net.HardwareAddr // nil when libxl chose none
	Bridge string
}

// The libxl_domain_config JSON, only the members labctl reads.
type listLongElem struct {
	DomID  *int `json:"domid"`
	Config *struct {
		CInfo struct {
			Type string `json:"type"`
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"c_info"`
		BInfo struct {
			MaxMemKB int64  `json:"max_memkb"`
			Kernel   string `json:"kernel"`
			Cmdline  string `json:"cmdline"`
		} `json:"b_info"`
		Disks []struct {
			PdevPath  string `json:"pdev_path"`
			Vdev      string `json:"vdev"`
			Format    string `json:"format"`
			ReadWrite int    `json:"readwrite"`
		} `json:"disks"`
		NICs []struct {
			DevID  int    `json:"devid"`
			MAC    string `json:"mac"`
			Bridge string `json:"bridge"`
		} `json:"nics"`
	} `json:"config"`
}

// ParseListLong parses `xl list -l`: a JSON array of {"domid", "config"}.
// xl.conf can switch the output to SXP; labctl does not read that.
func ParseListLong(out []byte) ([]DomainConfig, error) {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("xl list -l: expected a JSON array, got no output")
	}
	if trimmed[0] == '(' {
		return nil, fmt.Errorf("xl list -l: expected a JSON array, got SXP (set output_format=\"json\" in /etc/xen/xl.conf)")
	}
	var elems []listLongElem
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, fmt.Errorf("xl list -l: expected a JSON array of {\"domid\", \"config\"}: %w", err)
	}
	doms := make([]DomainConfig, 0, len(elems))
	for i, e := range elems {
		if e.DomID == nil {
			return nil, fmt.Errorf("xl list -l: element %d: expected a \"domid\" member", i)
		}
		if e.Config == nil {
			return nil, fmt.Errorf("xl list -l: element %d (domid %d): expected a \"config\" object", i, *e.DomID)
		}
		c := e.Config
		d := DomainConfig{
			DomID: *e.DomID, Name: c.CInfo.Name, Type: c.CInfo.Type, UUID: c.CInfo.UUID,
			Kernel: c.BInfo.Kernel, Cmdline: c.BInfo.Cmdline, MaxMemKB: c.BInfo.MaxMemKB,
		}
		for _, dk := range c.Disks {
			d.Disks = append(d.Disks, DomainDisk{Target: dk.PdevPath, Vdev: dk.Vdev, Format: dk.Format, ReadWrite: dk.ReadWrite != 0})
		}
		for j, n := range c.NICs {
			nic := DomainNIC{DevID: n.DevID, Bridge: n.Bridge}
			if n.MAC != "" {
				mac, err := net.ParseMAC(n.MAC)
				if err != nil || len(mac) != 6 {
					return nil, fmt.Errorf("xl list -l: domain %q nic %d: expected a MAC address, got %q", d.Name, j, n.MAC)
				}
				nic.MAC = mac
			}
			d.NICs = append(d.NICs, nic)
		}
		doms = append(doms, d)
	}
	return doms, nil
}
