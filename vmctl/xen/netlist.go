package xen

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Vif is one row of `xl network-list <domain>`.
type Vif struct {
	Idx       int
	Backend   int // backend domain id
	MAC       net.HardwareAddr
	Handle    int
	State     int // xenbus state; 4 = connected
	EvtCh     int
	TxRingRef int
	RxRingRef int
	BEPath    string
}

// XenbusConnected is the xenbus state of a vif whose frontend and backend
// have both come up.
const XenbusConnected = 4

// ParseNetworkList parses `xl network-list <domain>`.
func ParseNetworkList(out []byte) ([]Vif, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var vifs []Vif
	header := false
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		if !header {
			if !strings.HasPrefix(strings.TrimSpace(text), "Idx BE") {
				return nil, fmt.Errorf("xl network-list: line %d: expected header starting with \"Idx BE Mac Addr.\", got %q", line, text)
			}
			header = true
			continue
		}
		v, err := parseVif(text)
		if err != nil {
			return nil, fmt.Errorf("xl network-list: line %d: %w", line, err)
		}
		vifs = append(vifs, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("xl network-list: %w", err)
	}
	if !header {
		return nil, fmt.Errorf("xl network-list: expected a header starting with \"Idx BE Mac Addr.\", got no lines")
	}
	return vifs, nil
}

func parseVif(text string) (Vif, error) {
	f := strings.Fields(text)
	if len(f) != 8 {
		return Vif{}, fmt.Errorf("expected 8 columns (idx, be, mac, handle, state, evt-ch, tx/rx ring refs, be-path), got %d in %q", len(f), text)
	}
	var v Vif
	ints := []struct {
		dst  *int
		name string
		s    string
	}{
		{&v.Idx, "idx", f[0]}, {&v.Backend, "backend domain", f[1]},
		{&v.Handle, "handle", f[3]}, {&v.State, "state", f[4]}, {&v.EvtCh, "event channel", f[5]},
	}
	for _, x := range ints {
		n, err := strconv.Atoi(x.s)
		if err != nil {
			return Vif{}, fmt.Errorf("expected an integer %s, got %q", x.name, x.s)
		}
		*x.dst = n
	}
	mac, err := net.ParseMAC(f[2])
	if err != nil || len(mac) != 6 {
		return Vif{}, fmt.Errorf("expected a MAC address like 00:16:3e:10:92:37, got %q", f[2])
	}
	v.MAC = mac
	tx, rx, ok := strings.Cut(f[6], "/")
	if !ok {
		return Vif{}, fmt.Errorf("expected ring refs as TX/RX, got %q", f[6])
	}
	if v.TxRingRef, err = strconv.Atoi(tx); err != nil {
		return Vif{}, fmt.Errorf("expected an integer tx ring ref, got %q", tx)
	}
	if v.RxRingRef, err = strconv.Atoi(rx); err != nil {
		return Vif{}, fmt.Errorf("expected an integer rx ring ref, got %q", rx)
	}
	if !strings.HasPrefix(f[7], "/") {
		return Vif{}, fmt.Errorf("expected an absolute xenstore backend path, got %q", f[7])
	}
	v.BEPath = f[7]
	return v, nil
}
