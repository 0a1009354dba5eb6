package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Relay workers. A Manager runs a fixed set of them (Config.Workers, one per
// CPU by default), each a goroutine that owns an epoll instance, the receive
// buffers and a share of the streams: every socket of a stream belongs to
// the one worker the stream was given when it was made. On each wake-up a
// worker drains every ready socket with non-blocking recvmmsg(2) and relays
// each packet with one sendto(2).
//
// This replaces a goroutine per socket blocked in ReadFrom: there, every
// packet woke one goroutine through Go's netpoller and scheduler, and the
// constant short syscalls kept sysmon busy, ≈ 26 % of a packet's CPU time
// (test/load/analysis.md). Here the netpoller watches one descriptor per
// worker, the epoll instance, and wakes the worker once for everything that
// became ready meanwhile; the worker then calls epoll_wait without blocking
// until it returns nothing. Under load a wake-up serves many packets.
//
// The worker waits in the netpoller rather than in a blocking epoll_wait on
// a thread of its own (runtime.LockOSThread): measured with the load suite
// (500 RTP calls), the locked thread cost ≈ 12 µs per packet and this ≈ 10 µs,
// against ≈ 13 µs for the reader goroutines. A goroutine blocked in a
// syscall keeps its P until sysmon takes it back, and a locked thread then
// needs a handoff to run again; with as many workers as Ps, idle workers
// can hold every P and delay every other goroutine (the loopback ping-pong
// benchmark went from ≈ 20 µs to 55-90 µs a packet).
//
// The worker is the only goroutine that touches its table and buffers, and
// the only one that relays for its streams, so the per-packet path still
// takes no lock. Streams join and leave through ops queued under mu and
// signalled on an eventfd the epoll instance also watches; a leaving
// stream's Close waits until the worker has dropped its sockets, so a
// descriptor is never closed (and its number reused) under the worker.

// Receive batching: a worker reads up to recvBatch datagrams per recvmmsg
// and, so that one flooded socket cannot starve the others, at most
// maxBatches batches from one socket per wake-up (the epoll instance is
// level-triggered: what is left is reported again at once).
const (
	recvBatch  = 16
	maxBatches = 4
	maxEvents  = 256
)

// wakeSlot is the epoll data of the worker's eventfd.
const wakeSlot = -1

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

type opKind uint8

const (
	opAttach opKind = iota // add socks to the epoll instance
	opDetach               // remove every attached socket of s
	opStop                 // end the worker
)

// workerOp is a change the worker applies between two batches of events.
type workerOp struct {
	kind  opKind
	s     *Stream
	socks []*socket
	err   error         // set by the worker before done is closed
	done  chan struct{} // closed once applied
}

type worker struct {
	m    *Manager
	ep   *os.File        // the epoll instance, in Go's netpoller
	epfd int             // its descriptor (ep.Fd would make it blocking)
	rc   syscall.RawConn // of ep
	wake int             // eventfd: ops are queued

	mu      sync.Mutex // guards ops and stopped
	ops     []*workerOp
	stopped bool

	streams atomic.Int64 // streams attached, to spread new ones

	// Owned by the worker goroutine.
	poll   func(ep uintptr) bool // w.pollReady, made once
	stop   bool
	socks  []*socket // by slot; nil when free
	free   []int32   // free slots
	events []unix.EpollEvent
	msgs   []mmsghdr
	iovs   []unix.Iovec
	names  []sockaddr
	bufs   [][]byte // bufSize bytes each
}

func newWorker(m *Manager) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("media: epoll_create1: %w", err)
	}
	// An epoll descriptor is readable while it has events: non-blocking,
	// os.NewFile puts it in Go's netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "media-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("media: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		ep.Close()
		return nil, fmt.Errorf("media: epoll_ctl: %w", err)
	}
	w := &worker{
		m: m, ep: ep, epfd: epfd, rc: rc, wake: wake,
		events: make([]unix.EpollEvent, maxEvents),
		msgs:   make([]mmsghdr, recvBatch),
		iovs:   make([]unix.Iovec, recvBatch),
		names:  make([]sockaddr, recvBatch),
		bufs:   make([][]byte, recvBatch),
	}
	slab := make([]byte, recvBatch*bufSize)
	for i := range recvBatch {
		w.bufs[i] = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		// Reading one byte more than maxPacket tells an oversized
		// datagram from one that fits exactly.
		w.iovs[i].Base = &w.bufs[i][0]
		w.iovs[i].SetLen(maxPacket + 1)
		w.msgs[i].hdr.Iov = &w.iovs[i]
		w.msgs[i].hdr.Iovlen = 1
		w.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&w.names[i]))
	}
	w.poll = w.pollReady
	return w, nil
}

// run is the worker's goroutine: it waits in Go's netpoller for its epoll
// instance to be readable, then relays until epoll_wait has nothing more.
func (w *worker) run() {
	defer w.m.workerWG.Done()
	for !w.stop {
		if err := w.rc.Read(w.poll); err != nil {
			// Only a closed file fails, and the epoll instance is closed
			// after the worker ends: a bug, not a condition to live with.
			w.m.log.Error("media worker: waiting for the epoll instance failed", zap.Error(err))
			return
		}
	}
}

// poll handles one epoll_wait's worth of ready sockets and queued ops. It
// reports false, for the netpoller to wait, when nothing was ready.
func (w *worker) pollReady(ep uintptr) bool {
	// RawSyscall: with a timeout of 0 epoll_wait does not block (see
	// socket.send). epoll_pwait with no mask is epoll_wait on every arch.
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&w.events[0])), maxEvents, 0, 0, 0)
	if e != 0 || r == 0 {
		return false // EINTR cannot happen with a timeout of 0
	}
	control := false
	for i := range int(r) {
		slot := w.events[i].Fd
		if slot == wakeSlot {
			control = true
			continue
		}
		if k := w.socks[slot]; k != nil {
			w.drain(k)
		}
	}
	// Ops wait until the batch is done, so that no event of the batch can
	// name a socket that has left.
	if control && w.control() {
		w.stop = true
	}
	return true
}

// drain reads what is waiting on k and relays it: the per-packet loop.
func (w *worker) drain(k *socket) {
	for range maxBatches {
		for i := range w.msgs {
			w.msgs[i].hdr.Namelen = sockaddrLen
			w.msgs[i].hdr.Flags = 0
		}
		// RawSyscall: the socket is non-blocking and MSG_DONTWAIT is set,
		// so recvmmsg returns at once; see socket.send.
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(k.fd), uintptr(unsafe.Pointer(&w.msgs[0])), recvBatch,
			unix.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			// EAGAIN: drained. An unconnected UDP socket reports no
			// ICMP errors (no IP_RECVERR), so anything else is transient.
			return
		}
		for i := range int(r) {
			k.relay(w.bufs[i], int(w.msgs[i].n), addrPortOf(&w.names[i]))
		}
		if int(r) < recvBatch {
			return
		}
	}
}

// control applies the queued ops; it reports whether the worker must stop.
func (w *worker) control() (stop bool) {
	var b [8]byte
	_, _ = unix.Read(w.wake, b[:]) // resets the eventfd's counter
	w.mu.Lock()
	ops := w.ops
	w.ops = nil
	w.mu.Unlock()
	for _, op := range ops {
		switch op.kind {
		case opAttach:
			op.err = w.attach(op.socks)
		case opDetach:
			w.detach(op.s)
		case opStop:
			stop = true
		}
		close(op.done)
	}
	return stop
}

// attach adds socks to the epoll instance, all or none.
func (w *worker) attach(socks []*socket) error {
	for i, k := range socks {
		var slot int32
		if n := len(w.free); n > 0 {
			slot, w.free = w.free[n-1], w.free[:n-1]
		} else {
			slot = int32(len(w.socks))
			w.socks = append(w.socks, nil)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: slot}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, k.fd, &ev); err != nil {
			w.free = append(w.free, slot)
			for _, k := range socks[:i] {
				w.drop(k)
			}
			return fmt.Errorf("media: epoll_ctl: %w", err)
		}
		w.socks[slot], k.slot = k, slot
	}
	return nil
}

// detach removes every attached socket of s; the worker will not touch
// them again.
func (w *worker) detach(s *Stream) {
	for side := range s.legs {
		for _, k := range s.legs[side].socks {
			if k != nil && k.slot >= 0 {
				w.drop(k)
			}
		}
	}
}

func (w *worker) drop(k *socket) {
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, k.fd, nil)
	w.socks[k.slot] = nil
	w.free = append(w.free, k.slot)
	k.slot = -1
}

// do queues op, wakes the worker and waits until it has applied op. Once
// the worker has stopped, do fails with ErrClosed at once.
func (w *worker) do(op *workerOp) error {
	if !w.enqueue(op) {
		return ErrClosed
	}
	if err := w.signal(); err != nil {
		return err
	}
	<-op.done
	return op.err
}

// enqueue queues op (setting its done channel) without waking the worker;
// false if the worker has been told to stop.
func (w *worker) enqueue(op *workerOp) bool {
	op.done = make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.ops = append(w.ops, op)
	if op.kind == opStop {
		w.stopped = true
	}
	return true
}

// signal wakes the worker to apply the queued ops.
func (w *worker) signal() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(w.wake, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		// EAGAIN: the counter is full, so the worker is being woken.
		return fmt.Errorf("media: eventfd write: %w", err)
	}
	return nil
}

// closeFDs closes the worker's epoll instance and eventfd once it has
// stopped.
func (w *worker) closeFDs() {
	unix.Close(w.wake)
	w.ep.Close()
}
