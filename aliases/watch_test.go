package aliases

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"gatewayd/lab"
)

func TestAdmitAsksOncePerStep(t *testing.T) {
	steps := []Step{
		{Op: OpAdd, Alias: router, Interface: "eth1"},
		{Op: OpRelabel, Alias: dhcp, Interface: "eth1", OldLabel: "eth1:9"},
		{Op: OpDel, Alias: dns, Interface: "eth1"},
		{Op: OpConflict, Alias: labnet, Interface: "eth1", Reason: "taken"},
	}
	asked := map[string]int{}
	admitted, deferred := admit(steps, func(s Step) bool {
		asked[s.Op]++
		return s.Op != OpRelabel
	})
	if fmt.Sprint(asked) != "map[add:1 del:1 relabel:1]" {
		t.Errorf("allow asked %v, want once per writing step", asked)
	}
	if len(deferred) != 1 || deferred[0].Op != OpRelabel {
		t.Errorf("deferred %v, want the relabel", deferred)
	}
	if len(admitted) != 3 || admitted[0].Op != OpAdd || admitted[1].Op != OpDel || admitted[2].Op != OpConflict {
		t.Errorf("admitted %v", admitted)
	}
	if all, none := admit(steps, nil); len(all) != len(steps) || none != nil {
		t.Errorf("admit without a budget: %v, %v", all, none)
	}
}

// TestWatchBudgetIsWhatItSays removes an alias again and again under a
// clock that stands still: Watch puts it back exactly repairBurst times in
// the window, defers the next, and puts it back once the clock has moved
// on by the window.
func TestWatchBudgetIsWhatItSays(t *testing.T) {
	r := newRig(t)
	n := r.open(t)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	n.now = func() time.Time { return time.Unix(0, clock.Load()) }
	set(t, n, router, dhcp)
	r.watch(t, n)
	all := map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0", "192.168.1.2/24": "eth1:1"}
	without := map[string]string{primary: "eth1", "192.168.1.1/24": "eth1:0"}

	for i := range repairBurst {
		r.gw.MustRun(t, "ip", "addr", "del", "192.168.1.2/24", "dev", "eth1")
		lab.Eventually(t, 5*time.Second, func() error {
			if err := r.checkAddrs(t, all); err != nil {
				return fmt.Errorf("put-back %d of %d: %w", i+1, repairBurst, err)
			}
			return nil
		})
	}
	if got := n.deferred.Load(); got != 0 {
		t.Fatalf("%d puts-back deferred within the budget", got)
	}
	r.gw.MustRun(t, "ip", "addr", "del", "192.168.1.2/24", "dev", "eth1")
	lab.Eventually(t, 5*time.Second, func() error {
		if n.deferred.Load() == 0 {
			return errors.New("put-back beyond the budget not deferred yet")
		}
		return nil
	})
	r.wantAddrs(t, without)

	clock.Add(int64(repairWindow))
	// Any address event makes Watch look again.
	r.gw.MustRun(t, "ip", "addr", "add", "192.168.1.99/24", "dev", "eth1", "label", "eth1:hand")
	all["192.168.1.99/24"] = "eth1:hand"
	lab.Eventually(t, 5*time.Second, func() error { return r.checkAddrs(t, all) })
}
