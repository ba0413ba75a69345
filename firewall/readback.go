package firewall

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file reads table inet gatewayd back with plain dumps that decode only
// what Set and verify need (names, hooks, counts, counter values): the
// library's full decoding of thousands of objects costs more than the dumps.

// kernelChain is a chain of the table as the kernel lists it.
type kernelChain struct {
	name     string
	base     bool
	hook     uint32
	priority int32
	typ      string
}

// kernelObject is a stateful object of the table.
type kernelObject struct {
	name           string
	typ            uint32
	packets, bytes uint64 // counters only
}

// tableState is what table inet gatewayd holds.
type tableState struct {
	exists  bool
	chains  []kernelChain
	sets    []string
	objects []kernelObject
}

func tableAttr(typ uint16) []netlink.Attribute {
	return []netlink.Attribute{{Type: typ, Data: []byte(Table + "\x00")}}
}

// readTable lists the table, its chains, sets and objects.
func (s *nlSocket) readTable() (*tableState, error) {
	st := &tableState{}
	err := s.dump(unix.NFT_MSG_GETTABLE, nil, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			if ad.Type() == unix.NFTA_TABLE_NAME && ad.String() == Table {
				st.exists = true
			}
		}
		return ad.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing inet tables: %w", err)
	}
	if !st.exists {
		return st, nil
	}
	if err := s.dump(unix.NFT_MSG_GETCHAIN, tableAttr(unix.NFTA_CHAIN_TABLE), func(ad *netlink.AttributeDecoder) error {
		var c kernelChain
		var table string
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_CHAIN_TABLE:
				table = ad.String()
			case unix.NFTA_CHAIN_NAME:
				c.name = ad.String()
			case unix.NFTA_CHAIN_TYPE:
				c.typ = ad.String()
			case unix.NFTA_CHAIN_HOOK:
				c.base = true
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					nad.ByteOrder = binary.BigEndian
					for nad.Next() {
						switch nad.Type() {
						case unix.NFTA_HOOK_HOOKNUM:
							c.hook = nad.Uint32()
						case unix.NFTA_HOOK_PRIORITY:
							c.priority = int32(nad.Uint32())
						}
					}
					return nil
				})
			}
		}
		if table == Table {
			st.chains = append(st.chains, c)
		}
		return ad.Err()
	}); err != nil {
		return nil, fmt.Errorf("listing the chains of table inet gatewayd: %w", err)
	}
	if err := s.dump(unix.NFT_MSG_GETSET, tableAttr(unix.NFTA_SET_TABLE), func(ad *netlink.AttributeDecoder) error {
		var name, table string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_TABLE:
				table = ad.String()
			case unix.NFTA_SET_NAME:
				name = ad.String()
			}
		}
		if table == Table {
			st.sets = append(st.sets, name)
		}
		return ad.Err()
	}); err != nil {
		return nil, fmt.Errorf("listing the sets of table inet gatewayd: %w", err)
	}
	objs, err := s.readObjects()
	if err != nil {
		return nil, err
	}
	st.objects = objs
	return st, nil
}

// readObjects lists the table's stateful objects with counter values.
func (s *nlSocket) readObjects() ([]kernelObject, error) {
	var out []kernelObject
	err := s.dump(unix.NFT_MSG_GETOBJ, tableAttr(unix.NFTA_OBJ_TABLE), func(ad *netlink.AttributeDecoder) error {
		var o kernelObject
		var table string
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_OBJ_TABLE:
				table = ad.String()
			case unix.NFTA_OBJ_NAME:
				o.name = ad.String()
			case unix.NFTA_OBJ_TYPE:
				o.typ = ad.Uint32()
			case unix.NFTA_OBJ_DATA:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					nad.ByteOrder = binary.BigEndian
					for nad.Next() {
						switch nad.Type() {
						case unix.NFTA_COUNTER_BYTES:
							o.bytes = nad.Uint64()
						case unix.NFTA_COUNTER_PACKETS:
							o.packets = nad.Uint64()
						}
					}
					return nil
				})
			}
		}
		if table == Table {
			out = append(out, o)
		}
		return ad.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing the objects of table inet gatewayd: %w", err)
	}
	return out, nil
}

// countElements counts the elements of a set of the table as the kernel
// holds them (interval ends included).
func (s *nlSocket) countElements(set string) (int, error) {
	n := 0
	attrs := []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(Table + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(set + "\x00")},
	}
	err := s.dump(unix.NFT_MSG_GETSETELEM, attrs, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			if ad.Type() == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						n++
					}
					return nil
				})
			}
		}
		return ad.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("listing the elements of set %s: %w", set, err)
	}
	return n, nil
}

// countRules dumps every rule of the table in one request and counts them
// per chain.
func (s *nlSocket) countRules() (map[string]int, error) {
	counts := map[string]int{}
	err := s.dump(unix.NFT_MSG_GETRULE, tableAttr(unix.NFTA_RULE_TABLE), func(ad *netlink.AttributeDecoder) error {
		var table, chain string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			}
		}
		if table == Table {
			counts[chain]++
		}
		return ad.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("counting the rules of table inet gatewayd: %w", err)
	}
	return counts, nil
}
