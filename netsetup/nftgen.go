package netsetup

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Generation names one state of the nf_tables ruleset of the calling
// thread's network namespace. The kernel bumps the ruleset's generation on
// every committed transaction (nf_tables_commit: ++nft_net->base_seq) and
// answers NFT_MSG_GETGEN with it (nf_tables_getgen → nf_tables_fill_gen_info:
// NFTA_GEN_ID = htonl(base_seq), net/netfilter/nf_tables_api.c); nft's own
// cache is kept valid the same way (libnftnl gen.c, nft's mnl_genid_get).
// iptables-nft writes through the same transactions, so the same
// generation before and after a read means nothing committed in between
// (NFTRuleset's dumps, an iptables-save kept under their digest). The
// generation restarts in every new namespace, so it carries the
// namespace's cookie (SO_NETNS_COOKIE: never reused within a boot, unlike
// the nsfs inode): two reads compare only within one namespace.
type Generation struct {
	Netns uint64
	ID    uint32
}

// NFTGeneration asks the kernel for the ruleset generation of the calling
// thread's network namespace, on this thread (raw syscalls: a netlink
// library's goroutines could run in another namespace).
func NFTGeneration() (Generation, error) {
	fd, err := nftSocket()
	if err != nil {
		return Generation{}, fmt.Errorf("nf_tables generation: %w", err)
	}
	defer unix.Close(fd)
	// SO_NETNS_COOKIE needs Linux 5.14+; without it there is no safe key,
	// and callers ask in full.
	return generationOn(fd)
}

// nftSocket opens a NETLINK_NETFILTER socket in the calling thread's
// namespace, with a 250 ms receive timeout: the kernel answers at once or
// not at all.
func nftSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	tv := unix.Timeval{Usec: 250_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	return fd, nil
}

// genRequest is NFT_MSG_GETGEN: a netlink header and an empty nfgenmsg
// (family AF_UNSPEC, NFNETLINK_V0, res_id 0).
func genRequest() []byte {
	const size = unix.NLMSG_HDRLEN + 4
	b := make([]byte, size)
	binary.NativeEndian.PutUint32(b[0:], size)
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(b[8:], 1) // sequence
	return b
}

// ParseGenAnswer reads NFTA_GEN_ID from the kernel's answer to
// NFT_MSG_GETGEN, or the error it sent instead.
func ParseGenAnswer(b []byte) (uint32, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return 0, fmt.Errorf("short netlink error")
			}
			if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return 0, unix.Errno(errno)
			}
		case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN:
			if len(m.Data) < 4 {
				return 0, fmt.Errorf("short NEWGEN message")
			}
			// After the nfgenmsg: attributes, each {len, type} then the
			// value padded to 4 bytes; NFTA_GEN_ID is big-endian.
			for a := m.Data[4:]; len(a) >= unix.SizeofNlAttr; {
				l := int(binary.NativeEndian.Uint16(a[0:]))
				typ := binary.NativeEndian.Uint16(a[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
				if l < unix.SizeofNlAttr || l > len(a) {
					return 0, fmt.Errorf("bad attribute length %d", l)
				}
				if typ == unix.NFTA_GEN_ID && l >= unix.SizeofNlAttr+4 {
					return binary.BigEndian.Uint32(a[unix.SizeofNlAttr:]), nil
				}
				next := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
				if next > len(a) {
					break
				}
				a = a[next:]
			}
			return 0, fmt.Errorf("NEWGEN without NFTA_GEN_ID")
		}
	}
	return 0, fmt.Errorf("no NEWGEN message in %d bytes", len(b))
}
