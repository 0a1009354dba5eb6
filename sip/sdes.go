package sip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ccsbc/ccsbc/media"
)

// SDES (RFC 4568): SRTP keys carried in a=crypto, done the way Cisco gear
// does it. ccsbc terminates SRTP on each leg: the keys a peer sends are used
// only to decrypt what that peer sends; what ccsbc sends to it is encrypted
// with keys ccsbc generated for that leg. Keys never cross legs and never
// reach a log (media.SRTPKeys redacts itself).
//
//	a=crypto:<tag> <crypto-suite> inline:<base64(key||salt)>[|<lifetime>][|<MKI>:<len>] [<session-param> ...]

// ErrSRTPRequired: a leg that policy says must be SRTP was offered or
// answered without it.
var ErrSRTPRequired = errors.New("sip: SRTP required")

// sdesCrypto is one parsed a=crypto line.
type sdesCrypto struct {
	Tag  int
	Keys media.SRTPKeys
}

// parseCrypto parses the value of an a=crypto attribute. It refuses, with a
// reason, what ccsbc cannot honour rather than ignoring it: an MKI, a key
// lifetime short enough to expire within a call, several keys, and any
// session parameter.
func parseCrypto(v string) (sdesCrypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return sdesCrypto{}, fmt.Errorf("a=crypto needs a tag, a suite and a key")
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return sdesCrypto{}, fmt.Errorf("a=crypto tag %q is not a number", f[0])
	}
	suite, err := media.ParseSRTPSuite(f[1])
	if err != nil {
		return sdesCrypto{}, fmt.Errorf("suite %s is not supported", f[1])
	}
	if len(f) > 3 {
		return sdesCrypto{}, fmt.Errorf("session parameter %s is not supported", f[3])
	}
	if strings.Contains(f[2], ";") {
		return sdesCrypto{}, fmt.Errorf("several keys in one a=crypto are not supported")
	}
	param, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return sdesCrypto{}, fmt.Errorf("key method is not inline")
	}
	parts := strings.Split(param, "|")
	raw, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		// Some gear omits the padding.
		raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[0], "="))
		if err != nil {
			return sdesCrypto{}, fmt.Errorf("key is not base64")
		}
	}
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			return sdesCrypto{}, fmt.Errorf("MKI is not supported")
		}
		if err := checkLifetime(p); err != nil {
			return sdesCrypto{}, err
		}
	}
	keys, err := media.NewSRTPKeys(suite, raw)
	if err != nil {
		return sdesCrypto{}, fmt.Errorf("key length does not fit %s", suite)
	}
	return sdesCrypto{Tag: tag, Keys: keys}, nil
}

// minLifetime: ccsbc does not re-key within a call on its own, so a key
// must last for any call: 2^31 packets is over a year of 20 ms audio.
const minLifetimeLog2 = 31

func checkLifetime(p string) error {
	var n uint64
	if exp, ok := strings.CutPrefix(p, "2^"); ok {
		e, err := strconv.Atoi(exp)
		if err != nil || e < 0 || e > 63 {
			return fmt.Errorf("key lifetime %q is malformed", p)
		}
		if e < minLifetimeLog2 {
			return fmt.Errorf("key lifetime %s is shorter than ccsbc honours (2^%d)", p, minLifetimeLog2)
		}
		return nil
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return fmt.Errorf("key lifetime %q is malformed", p)
	}
	if n < 1<<minLifetimeLog2 {
		return fmt.Errorf("key lifetime %s is shorter than ccsbc honours (2^%d)", p, minLifetimeLog2)
	}
	return nil
}

// formatCrypto renders ccsbc's own a=crypto value.
func formatCrypto(tag int, k media.SRTPKeys) string {
	return strconv.Itoa(tag) + " " + k.Suite.String() + " inline:" + base64.StdEncoding.EncodeToString(k.KeySalt())
}

// chooseCrypto picks, in the offerer's order, the first a=crypto line that
// parses and whose suite the peer is allowed; the reasons for refusing the
// others make the error when none fits.
func chooseCrypto(lines []string, allowed []media.SRTPSuite) (sdesCrypto, error) {
	var why []string
	for _, l := range lines {
		c, err := parseCrypto(l)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if !containsSuite(allowed, c.Keys.Suite) {
			why = append(why, fmt.Sprintf("suite %s is not allowed for this peer", c.Keys.Suite))
			continue
		}
		return c, nil
	}
	if len(why) == 0 {
		return sdesCrypto{}, fmt.Errorf("no a=crypto line")
	}
	return sdesCrypto{}, fmt.Errorf("no acceptable a=crypto line (%s)", strings.Join(why, "; "))
}

func containsSuite(list []media.SRTPSuite, s media.SRTPSuite) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sameKeys(a, b media.SRTPKeys) bool {
	return a.Suite == b.Suite && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Salt, b.Salt)
}
