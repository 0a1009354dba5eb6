package media

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestPortCapacity(t *testing.T) {
	// 40000-40999: 500 pairs, 2 per stream.
	c, err := PortCapacity(40000, 40999, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ports != 250 {
		t.Errorf("40000-40999 holds %d streams, want 250", c.Ports)
	}
	// 128-145: 9 pairs, of which 134, 136 and 138 touch a blocked port
	// (135, 137, 138): 6 usable pairs, 3 streams.
	if c, err := PortCapacity(128, 145, 1); err != nil || c.Ports != 3 {
		t.Errorf("128-145: %+v, %v; want 3 streams (pairs touching 135, 137, 138 unused)", c, err)
	}
	if _, err := PortCapacity(40000, 40002, 1); err == nil {
		t.Error("a range of one pair was accepted")
	}
	// Every bind address has the whole range.
	if c, err := PortCapacity(40000, 40999, 3); err != nil || c.Ports != 750 {
		t.Errorf("40000-40999 on 3 addresses: %+v, %v; want 750 streams", c, err)
	}
}

func TestCapacityFileLimit(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 1280 // leaves (1280-256)/4 = 256 streams
	if low.Cur > old.Max {
		t.Skipf("hard open-file limit %d is below 1280", old.Max)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)

	c, err := PortCapacity(20000, 29999, 1) // 2500 streams by ports
	if err != nil {
		t.Fatal(err)
	}
	if c.FileLimit != 1280 || c.Files != 256 || c.Streams() != 256 || !c.FileBound() {
		t.Errorf("ports 20000-29999 under 1280 files: %+v (streams %d, file bound %v); want 256 streams, bound by files", c, c.Streams(), c.FileBound())
	}
	c, _ = PortCapacity(40000, 40999, 1)
	if c.Streams() != 250 || c.FileBound() {
		t.Errorf("ports 40000-40999 under 1280 files: %+v; want 250 streams, bound by ports", c)
	}
}
