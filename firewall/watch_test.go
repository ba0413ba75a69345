package firewall

import (
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestForeignChange: Watch tells of a change to table inet gatewayd made by
// another socket, and of nothing else: not its own batches' echo, not
// another table, not another family's table of the same name, not the
// generation message that ends every batch.
func TestForeignChange(t *testing.T) {
	const own, other = 4242, 77
	msg := func(pid uint32, typ uint16, family byte, table string) netlink.Message {
		data := append([]byte{family, unix.NFNETLINK_V0, 0, 0}, netlinkAttr(1, []byte(table+"\x00"))...)
		return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ), PID: pid}, Data: data}
	}
	for _, tc := range []struct {
		what string
		m    netlink.Message
		want bool
	}{
		{"another program deletes the table", msg(other, unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, Table), true},
		{"another program adds a rule", msg(other, unix.NFT_MSG_NEWRULE, unix.NFPROTO_INET, Table), true},
		{"another program changes a set", msg(other, unix.NFT_MSG_DELSETELEM, unix.NFPROTO_INET, Table), true},
		{"our own batch", msg(own, unix.NFT_MSG_NEWRULE, unix.NFPROTO_INET, Table), false},
		{"another table", msg(other, unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, "filter"), false},
		{"ip gatewayd, another family", msg(other, unix.NFT_MSG_DELTABLE, unix.NFPROTO_IPV4, Table), false},
		{"the generation message", msg(other, unix.NFT_MSG_NEWGEN, unix.NFPROTO_INET, Table), false},
	} {
		if got := foreignChange([]netlink.Message{tc.m}, own); got != tc.want {
			t.Errorf("%s: foreignChange = %v, want %v", tc.what, got, tc.want)
		}
	}
}
