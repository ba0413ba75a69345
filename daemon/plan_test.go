package daemon

import (
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gatewayd/roles/dhcp"
	"gatewayd/roles/dns"
	"gatewayd/roles/router"
)

// TestPlanSeesEveryField is the proof that plan cannot miss a change: for
// every field of every role's desired value, including fields added after
// this test was written, two values that differ in that field alone make
// plan report an update naming it (or, for the role's address, a move).
func TestPlanSeesEveryField(t *testing.T) {
	for _, tc := range []struct {
		role string
		val  any // a pointer to a zero value of the role's type
		put  func(d *desired, v any)
	}{
		{"router", &router.Config{}, func(d *desired, v any) { d.Router = v.(*router.Config) }},
		{"dns", &dns.Config{}, func(d *desired, v any) { d.DNS = v.(*dns.Config) }},
		{"dhcp", &dhcp.Config{}, func(d *desired, v any) { d.DHCP = v.(*dhcp.Config) }},
	} {
		typ := reflect.TypeOf(tc.val).Elem()
		for i := range typ.NumField() {
			f := typ.Field(i)
			t.Run(tc.role+"."+f.Name, func(t *testing.T) {
				a := reflect.New(typ)
				b := reflect.New(typ)
				b.Elem().Field(i).Set(nonZero(t, f.Type))
				h := map[string]holder{tc.role: {Alias: tc.role, Addr: netip.MustParseAddr("192.0.2.1"), Held: true}}
				prev := &desired{Holders: h}
				next := &desired{Holders: maps.Clone(h)}
				tc.put(prev, a.Interface())
				tc.put(next, b.Interface())
				if f.Tag.Get("plan") == "-" {
					// The role's address: a change is a move, which the
					// holders carry; changedFields leaves it out.
					if got := changedFields(a.Interface(), b.Interface()); len(got) != 0 {
						t.Errorf("changedFields = %v, want nothing for the address field", got)
					}
					return
				}
				got := strings.Join(rolePlan(tc.role, prev, next), "\n")
				name := f.Tag.Get("plan")
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				if !strings.Contains(got, tc.role+": update ") || !strings.Contains(got, name) {
					t.Errorf("plan after changing %s: %q, want an update naming %q", f.Name, got, name)
				}
			})
		}
	}
}

// nonZero makes a value of type t that is not its zero value.
func nonZero(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	switch typ {
	case reflect.TypeFor[netip.Addr]():
		return reflect.ValueOf(netip.MustParseAddr("192.0.2.9"))
	case reflect.TypeFor[netip.Prefix]():
		return reflect.ValueOf(netip.MustParsePrefix("192.0.2.0/24"))
	case reflect.TypeFor[netip.AddrPort]():
		return reflect.ValueOf(netip.MustParseAddrPort("192.0.2.9:53"))
	case reflect.TypeFor[time.Duration]():
		return reflect.ValueOf(time.Second)
	case reflect.TypeFor[net.HardwareAddr]():
		return reflect.ValueOf(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	}
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Slice:
		v = reflect.MakeSlice(typ, 1, 1)
		v.Index(0).Set(nonZero(t, typ.Elem()))
	case reflect.Struct:
		idx := slices.IndexFunc(reflect.VisibleFields(typ), func(f reflect.StructField) bool { return f.IsExported() })
		if idx < 0 {
			t.Fatalf("cannot make a non-zero %s", typ)
		}
		v.Field(idx).Set(nonZero(t, typ.Field(idx).Type))
	case reflect.Pointer:
		v = reflect.New(typ.Elem())
		v.Elem().Set(nonZero(t, typ.Elem()))
	default:
		t.Fatalf("cannot make a non-zero %s", typ)
	}
	return v
}
