package firewall

import (
	"bytes"
	"testing"

	"github.com/google/nftables"
)

// TestRuleMessagesMatchLibrary: the rule messages ruleEncoder frames, with
// its cached expressions, are byte for byte what google/nftables' AddRule
// makes of the same expressions.
func TestRuleMessagesMatchLibrary(t *testing.T) {
	for path, p := range map[string]Policy{"seed": seedPolicy(), "nozones": nozonesPolicy(), "outside": outsidePolicy(), "many": manyPolicy(),
		"wan": wanPolicy(), "dhcpwan": dhcpWANPolicy()} {
		r := Build(p)
		mine, err := ruleMessages(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		enc := &encoder{setIDs: setIDs(r)}
		lib, err := capture(func(cc *nftables.Conn) error {
			tbl := gatewaydTable()
			for _, c := range r.Chains {
				ch := &nftables.Chain{Table: tbl, Name: c.Name}
				for _, rl := range c.Rules {
					exprs, err := enc.exprs(rl)
					if err != nil {
						return err
					}
					cc.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: exprs, UserData: ruleUserData(rl)})
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != len(lib) {
			t.Fatalf("%s: %d rule messages, library %d", path, len(mine), len(lib))
		}
		for i := range mine {
			if mine[i].Header.Type != lib[i].Header.Type || !bytes.Equal(mine[i].Data, lib[i].Data) {
				t.Errorf("%s: rule message %d (%s) differs from the library's:\n% x\n% x", path, i, describeMsg(mine[i]), mine[i].Data, lib[i].Data)
			}
		}
	}
}
