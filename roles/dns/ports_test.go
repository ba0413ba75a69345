package dns

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAddPortList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int // ports in the set
		not  []int // ports not in it
		bad  bool  // some item is reported
	}{
		{in: "", not: []int{0, 1024, 65535}},
		{in: "\n", not: []int{8080}},
		{in: "8080\n", want: []int{8080}, not: []int{8079, 8081}},
		{in: "8080,9000-9100\n", want: []int{8080, 9000, 9050, 9100}, not: []int{8999, 9101}},
		{in: " 1 , 2 - 3 ,", want: []int{1, 2, 3}, not: []int{4}},
		{in: "65535", want: []int{65535}, not: []int{65534}},
		{in: "0-0", want: []int{0}, not: []int{1}},
		{in: "x,5000", want: []int{5000}, bad: true},
		{in: "70000,5001", want: []int{5001}, not: []int{70000 - 65536}, bad: true},
		{in: "9100-9000,7", want: []int{7}, not: []int{9000, 9100}, bad: true},
		{in: "-5,6-,8", want: []int{8}, not: []int{5, 6}, bad: true},
		{in: "10-20-30", not: []int{10, 20, 30}, bad: true},
	} {
		p := new(portSet)
		err := p.addPortList(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("addPortList(%q): error %v, want one: %v", tc.in, err, tc.bad)
		}
		for _, port := range tc.want {
			if !p.has(port) {
				t.Errorf("addPortList(%q): %d missing", tc.in, port)
			}
		}
		for _, port := range tc.not {
			if p.has(port) {
				t.Errorf("addPortList(%q): %d in the set", tc.in, port)
			}
		}
	}
}

func TestAvoidedPorts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "reserved")
	if err := os.WriteFile(file, []byte("2000-2999,40000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := avoidedPorts(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range append([]int{2000, 2500, 2999, 40000}, 1194, 5353, 51820) {
		if !p.has(port) {
			t.Errorf("port %d not avoided", port)
		}
	}
	for range 200000 {
		port := p.draw()
		if port < portLow || port > 65535 || p.has(port) {
			t.Fatalf("drew port %d", port)
		}
	}
	// An unreadable file leaves the well-known list.
	p, err = avoidedPorts(filepath.Join(t.TempDir(), "none"))
	if err != nil || !p.has(51820) || p.has(2000) {
		t.Errorf("without the file: err %v, 51820 avoided %v, 2000 avoided %v", err, p.has(51820), p.has(2000))
	}
	// Nearly the whole range reserved: the kernel picks.
	p = new(portSet)
	p.addRange(portLow, 65535)
	if port := p.draw(); port != 0 {
		t.Errorf("every port avoided: drew %d", port)
	}
}
