package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinels that configuration and TLS errors unwrap to; branch on them
// with errors.Is.
var (
	// ErrSyntax: the file is not well-formed YAML.
	ErrSyntax = errors.New("config: YAML syntax error")
	// ErrUnknownKey: a key the schema does not have (often a typo).
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrInvalid: a value is missing, malformed or not allowed.
	ErrInvalid = errors.New("config: invalid value")
	// ErrPeerCertificate: a TLS peer presented a certificate that no
	// configured verification accepts. Handshakes fail with it.
	ErrPeerCertificate = errors.New("config: tls: peer certificate not accepted")
)

// Error is one problem in a configuration, located by file, line and key
// path. Its message says what is wrong and how to fix it:
//
//	lab.yaml:17: peers[2].transport: "sctp" is not one of udp, tcp, tls
type Error struct {
	File string // file name as given to Load or Parse
	Line int    // 1-based; 0 when unknown (a Config built in code)
	Key  string // key path, e.g. "peers[2].transport"; "" for the whole file
	Msg  string
	Err  error // ErrSyntax, ErrUnknownKey or ErrInvalid
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorList collects every problem found, so an engineer sees them all in
// one run rather than one per edit.
type errorList []*Error

// join orders the errors as they appear in the file (unknown lines last)
// and joins them, one per line; nil when there are none.
func (l errorList) join() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}
