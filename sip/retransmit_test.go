package sip

import (
	"runtime"
	"testing"
	"weak"

	"github.com/emiago/sipgo/sip"
)

// txStub is a client transaction that only keeps its retransmission
// callback, as sipgo does for 32 s after a 2xx.
type txStub struct {
	sip.ClientTransaction
	onRetransmission sip.FnTxResponse
}

func (t *txStub) OnRetransmission(f sip.FnTxResponse) bool {
	t.onRetransmission = f
	return true
}

// TestAckRetransmissionsHoldsNoCall: the callback ccsbc leaves with an
// INVITE client transaction does not keep an ended call in memory (sipgo
// keeps the transaction 32 s after its 2xx; at 1,000 calls/s the calls it
// held were over a GiB), and does nothing once the call is gone.
func TestAckRetransmissionsHoldsNoCall(t *testing.T) {
	tx := &txStub{}
	wc, wl := func() (weak.Pointer[call], weak.Pointer[leg]) {
		c, l := &call{}, &leg{}
		c.ackRetransmissions(tx, l)
		return weak.Make(c), weak.Make(l)
	}()
	if tx.onRetransmission == nil {
		t.Fatal("no retransmission callback registered")
	}
	runtime.GC()
	runtime.GC()
	if wc.Value() != nil || wl.Value() != nil {
		t.Fatal("the transaction's callback keeps the ended call (or its leg) in memory")
	}
	tx.onRetransmission(sip.NewResponse(200, "OK")) // the call is gone: nothing to ACK, no panic
}
