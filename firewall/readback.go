package firewall

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file reads table inet gatewayd back with plain dumps that decode only
// what Set compares (see plan.go): names, hooks and policies, each rule's
// userdata (its comment and fingerprint), set properties and elements,
// objects and counter values. Rule expressions are not decoded: the
// fingerprint identifies a rule gatewayd wrote, and anything else differs.

// kernelTable is what table inet gatewayd holds.
type kernelTable struct {
	exists  bool
	flags   uint32
	chains  []kernelChain
	sets    []kernelSet
	objects []kernelObject
	rules   map[string][][]byte // per chain, each rule's userdata in order
}

// kernelChain is a chain of the table as the kernel lists it.
type kernelChain struct {
	name     string
	base     bool
	hook     uint32
	priority int32
	typ      string
	policy   uint32
}

// kernelSet is a set of the table: its properties and elements.
type kernelSet struct {
	name                   string
	flags, keyType, keyLen uint32
	dataType               uint32
	elements               []setElem
}

// setElem is one element of a set as the table holds it: its key, whether
// it closes an interval, and the verdict of a map element.
type setElem struct {
	key   string // the key's bytes
	end   bool
	code  int32
	chain string
}

// kernelObject is a stateful object of the table.
type kernelObject struct {
	name           string
	typ            uint32
	packets, bytes uint64 // counters only
}

func tableAttr(typ uint16) []netlink.Attribute {
	return []netlink.Attribute{{Type: typ, Data: []byte(Table + "\x00")}}
}

// readTable lists the table: its flags, chains, rules, sets with their
// elements, and objects.
func (s *nlSocket) readTable() (*kernelTable, error) {
	kt := &kernelTable{rules: map[string][][]byte{}}
	err := s.dump(unix.NFT_MSG_GETTABLE, nil, func(ad *netlink.AttributeDecoder) error {
		var name string
		var flags uint32
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_NAME:
				name = ad.String()
			case unix.NFTA_TABLE_FLAGS:
				flags = ad.Uint32()
			}
		}
		if name == Table {
			kt.exists, kt.flags = true, flags
		}
		return ad.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing inet tables: %w", err)
	}
	if !kt.exists {
		return kt, nil
	}
	for _, step := range []func(*kernelTable) error{s.readChains, s.readRules, s.readSets} {
		if err := step(kt); err != nil {
			return nil, err
		}
	}
	for i := range kt.sets {
		if err := s.readElements(&kt.sets[i]); err != nil {
			return nil, err
		}
	}
	objs, err := s.readObjects()
	if err != nil {
		return nil, err
	}
	kt.objects = objs
	return kt, nil
}

func (s *nlSocket) readChains(kt *kernelTable) error {
	err := s.dump(unix.NFT_MSG_GETCHAIN, tableAttr(unix.NFTA_CHAIN_TABLE), func(ad *netlink.AttributeDecoder) error {
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
			case unix.NFTA_CHAIN_POLICY:
				c.policy = ad.Uint32()
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
			kt.chains = append(kt.chains, c)
		}
		return ad.Err()
	})
	if err != nil {
		return fmt.Errorf("listing the chains of table inet gatewayd: %w", err)
	}
	return nil
}

// readRules dumps every rule of the table in one request, keeping the
// userdata of each in its chain's order.
func (s *nlSocket) readRules(kt *kernelTable) error {
	err := s.dump(unix.NFT_MSG_GETRULE, tableAttr(unix.NFTA_RULE_TABLE), func(ad *netlink.AttributeDecoder) error {
		var table, chain string
		ud := []byte{}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_USERDATA:
				ud = append(ud, ad.Bytes()...)
			}
		}
		if table == Table {
			kt.rules[chain] = append(kt.rules[chain], ud)
		}
		return ad.Err()
	})
	if err != nil {
		return fmt.Errorf("listing the rules of table inet gatewayd: %w", err)
	}
	return nil
}

func (s *nlSocket) readSets(kt *kernelTable) error {
	err := s.dump(unix.NFT_MSG_GETSET, tableAttr(unix.NFTA_SET_TABLE), func(ad *netlink.AttributeDecoder) error {
		var ks kernelSet
		var table string
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_TABLE:
				table = ad.String()
			case unix.NFTA_SET_NAME:
				ks.name = ad.String()
			case unix.NFTA_SET_FLAGS:
				ks.flags = ad.Uint32()
			case unix.NFTA_SET_KEY_TYPE:
				ks.keyType = ad.Uint32()
			case unix.NFTA_SET_KEY_LEN:
				ks.keyLen = ad.Uint32()
			case unix.NFTA_SET_DATA_TYPE:
				ks.dataType = ad.Uint32()
			}
		}
		if table == Table {
			kt.sets = append(kt.sets, ks)
		}
		return ad.Err()
	})
	if err != nil {
		return fmt.Errorf("listing the sets of table inet gatewayd: %w", err)
	}
	return nil
}

// readElements lists the elements of a set of the table (interval ends
// included).
func (s *nlSocket) readElements(ks *kernelSet) error {
	attrs := []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(Table + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(ks.name + "\x00")},
	}
	err := s.dump(unix.NFT_MSG_GETSETELEM, attrs, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(el *netlink.AttributeDecoder) error {
						ks.elements = append(ks.elements, decodeElement(el))
						return nil
					})
				}
				return nil
			})
		}
		return ad.Err()
	})
	if err != nil {
		return fmt.Errorf("listing the elements of set %s: %w", ks.name, err)
	}
	return nil
}

// decodeElement reads one set element: its key, flags and verdict.
func decodeElement(ad *netlink.AttributeDecoder) setElem {
	var key []byte
	var flags, code uint32
	var chain string
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.NFTA_DATA_VALUE {
						key = nad.Bytes()
					}
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			flags = ad.Uint32()
		case unix.NFTA_SET_ELEM_DATA:
			ad.Nested(func(data *netlink.AttributeDecoder) error {
				for data.Next() {
					if data.Type() != unix.NFTA_DATA_VERDICT {
						continue
					}
					data.Nested(func(v *netlink.AttributeDecoder) error {
						v.ByteOrder = binary.BigEndian
						for v.Next() {
							switch v.Type() {
							case unix.NFTA_VERDICT_CODE:
								code = v.Uint32()
							case unix.NFTA_VERDICT_CHAIN:
								chain = v.String()
							}
						}
						return nil
					})
				}
				return nil
			})
		}
	}
	return setElem{key: string(key), end: flags&unix.NFT_SET_ELEM_INTERVAL_END != 0, code: int32(code), chain: chain}
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
