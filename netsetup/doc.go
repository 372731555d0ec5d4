// Package netsetup holds dom0's network primitives: each an observe
// function and an ensure/remove pair that is safe to call twice (bridge and
// ports, address move, promiscuous mode, sysctls, iptables rules in
// labctl's own chains, dnsmasq). It works on the network namespace of the
// calling process; the simulated lab runs it inside <lab>-dom0.
package netsetup
