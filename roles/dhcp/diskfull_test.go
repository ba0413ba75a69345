package dhcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"gatewayd/lab"
)

// diskChildEnv, when set to "<config JSON>,<state dir>,<tmpfs size>", makes
// the test binary a DHCP server whose state directory is a tmpfs of that
// size, mounted in a mount namespace of its own (the parent starts it
// under unshare --mount, so the host never sees the mount). It reads
// commands on stdin: "status" prints one JSON line (diskReport), "grow"
// makes the tmpfs larger.
const diskChildEnv = "GATEWAYD_DHCP_DISK_CHILD"

// diskReport is what the child says about itself.
type diskReport struct {
	Store  StoreStatus
	Memory []Lease // the server's leases
	Disk   []Lease // the leases its log holds, read by a read-only store
}

func runDiskChild(spec string) int {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad spec", spec)
		return 2
	}
	cfgPath, state, size := parts[0], parts[1], parts[2]
	if err := unix.Mount("gatewayd-test", state, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size="+size); err != nil {
		fmt.Fprintln(os.Stderr, "mounting the tmpfs:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := readConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := New(Options{StateDir: state, Logger: log})
	if err == nil {
		err = s.Set(context.Background(), c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "status":
			rep := diskReport{Store: s.Status().Store, Memory: s.Leases()}
			ro, err := New(Options{StateDir: state, Logger: log, ReadOnly: true})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			rep.Disk = ro.Leases()
			ro.Close()
			b, _ := json.Marshal(rep)
			fmt.Println(string(b))
		case "grow":
			if err := unix.Mount("gatewayd-test", state, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size=4m"); err != nil {
				fmt.Println("grow:", err)
			} else {
				fmt.Println("grown")
			}
		}
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// diskChild is the parent's handle on the child.
type diskChild struct {
	t      *testing.T
	in     io.Writer
	out    *bufio.Reader
	stderr *syncBuffer
}

func (c *diskChild) ask(cmd string) string {
	c.t.Helper()
	fmt.Fprintln(c.in, cmd)
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.t.Fatalf("child: %v\n%s", err, c.stderr)
	}
	return strings.TrimSpace(line)
}

func (c *diskChild) status() diskReport {
	c.t.Helper()
	var r diskReport
	if err := json.Unmarshal([]byte(c.ask("status")), &r); err != nil {
		c.t.Fatal(err)
	}
	return r
}

// startDiskChild runs the server of n.gw in a child process whose state
// directory is a tmpfs of size, and waits until it serves.
func startDiskChild(t *testing.T, n *testNet, size string) *diskChild {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	cfgPath := filepath.Join(dir, "dhcp.json")
	if err := writeConfig(cfgPath, netConfig()); err != nil {
		t.Fatal(err)
	}
	cmd := n.gw.Command(context.Background(), "unshare", "--mount", "--propagation", "private", "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), diskChildEnv+"="+cfgPath+","+state+","+size)
	child := &diskChild{t: t, stderr: &syncBuffer{}}
	cmd.Stderr = child.stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	child.in, child.out = stdin, bufio.NewReader(stdout)
	if err := n.gw.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		if t.Failed() {
			t.Logf("child log:\n%s", child.stderr)
		}
	})
	if line, err := child.out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child: %q %v\n%s", line, err, child.stderr)
	}
	return child
}

// TestDiskFullIsAState fills the lease log's disk (an 8 KiB tmpfs) while
// clients keep asking for leases: no lease is kept in memory that is not
// on disk, status says degraded with the error and its time, the failure
// is logged once, and service resumes by itself when space returns.
func TestDiskFullIsAState(t *testing.T) {
	lab.RequireTools(t, "unshare")
	n := newTestNet(t)
	if err := n.srv.Close(); err != nil { // the child serves instead
		t.Fatal(err)
	}
	child := startDiskChild(t, n, "8k")
	c := newPeerClient(t, n, "clients", "02:00:00:00:0d:01")
	lease := func(i int) bool {
		hw := []byte{2, 0, 0, 0x0d, byte(i >> 8), byte(i)}
		d, _ := dhcpv4.NewDiscovery(hw, dhcpv4.WithBroadcast(true))
		off, _, err := c.exchange(d, "255.255.255.255:67", 500*time.Millisecond)
		if err != nil || off == nil || off.MessageType() != dhcpv4.MessageTypeOffer {
			return false
		}
		req, _ := dhcpv4.NewRequestFromOffer(off, dhcpv4.WithBroadcast(true))
		ack, _, err := c.exchange(req, "255.255.255.255:67", 500*time.Millisecond)
		return err == nil && ack != nil && ack.MessageType() == dhcpv4.MessageTypeAck
	}
	acked, failed, i := 0, 0, 0
	for ; failed < 4 && i < 2000; i++ {
		if lease(i) {
			acked, failed = acked+1, 0
		} else {
			failed++
		}
	}
	t.Logf("%d ACKs before the disk filled, %d clients asked", acked, i)
	if acked < 20 || failed < 4 {
		t.Fatalf("%d ACKs, %d failures in a row after %d clients: the disk never filled", acked, failed, i)
	}
	rep := child.status()
	st := rep.Store
	if !st.Degraded || !strings.Contains(st.LastError, "no space") || st.LastErrorTime.IsZero() || st.FailedWrites < 2 {
		t.Errorf("store status on a full disk: %+v", st)
	}
	if !reflect.DeepEqual(rep.Memory, rep.Disk) || len(rep.Memory) != acked {
		t.Errorf("on a full disk memory holds %d leases, the disk %d, %d were ACKed", len(rep.Memory), len(rep.Disk), acked)
	}
	if got := strings.Count(child.stderr.String(), "lease log writes fail"); got != 1 {
		t.Errorf("the failing writes were logged %d times, want once:\n%s", got, child.stderr)
	}

	if got := child.ask("grow"); got != "grown" {
		t.Fatal(got)
	}
	ok := false
	for try := 0; try < 5 && !ok; try++ {
		ok = lease(i + try)
	}
	if !ok {
		t.Fatal("no lease after space came back")
	}
	rep = child.status()
	if st := rep.Store; st.Degraded || st.LastError != "" || !st.LastErrorTime.IsZero() {
		t.Errorf("store status after space came back: %+v", st)
	}
	if !reflect.DeepEqual(rep.Memory, rep.Disk) || len(rep.Memory) != acked+1 {
		t.Errorf("after recovery memory holds %d leases, the disk %d, want %d", len(rep.Memory), len(rep.Disk), acked+1)
	}
	if log := child.stderr.String(); !strings.Contains(log, "succeed again") || !strings.Contains(log, "failed_batches=") {
		t.Errorf("the recovery is not logged with the count:\n%s", log)
	}
}
