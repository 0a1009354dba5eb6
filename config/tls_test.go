package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf for the given IPs and DNS names, good for server
// and client authentication.
func (ca *testCA) issue(t *testing.T, cn string, ips []net.IP, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// bundle writes the CA's PEM to a file and returns its path.
func (ca *testCA) bundle(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// instanceCert is a generated self-signed instance certificate, as
// ccsbc makes on first start, in a state directory of its own.
func instanceCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	cert, fp, err := LoadOrCreateCertificate(&TLS{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return cert, fp
}

var localhost = []net.IP{net.IPv4(127, 0, 0, 1)}

// handshake runs a real TLS handshake over 127.0.0.1 and returns each
// side's error. The server writes one byte after its handshake and the
// client reads it, so that a client certificate the server refuses (which
// TLS 1.3 reports after the client's handshake is done) fails the client
// too. It leaves no goroutine behind.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte{1})
		done <- err
	}()

	clientErr = func() error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		// With TLS 1.1 the byte and the close_notify after it may come in
		// one Read, as (1, io.EOF).
		if n, err := conn.Read(make([]byte, 1)); n != 1 {
			return err
		}
		return nil
	}()
	ln.Close() // unblocks Accept if the client never connected
	return <-done, clientErr
}

// peerAt is a peer on the 127.0.0.1 lab address.
func peerAt(name, verify, fingerprint string) Peer {
	return Peer{
		Name:        name,
		Address:     netip.MustParseAddrPort("127.0.0.1:5081"),
		Transport:   "tls",
		Verify:      verify,
		Fingerprint: fingerprint,
	}
}

// TestClientVerification is ccsbc dialling a peer: how the peer's server
// certificate is checked, per verify.
func TestClientVerification(t *testing.T) {
	ours, _ := instanceCert(t)
	peerCert, peerFP := instanceCert(t)
	_, otherFP := instanceCert(t)
	ca := newTestCA(t, "lab CA")
	wrongCA := newTestCA(t, "someone else's CA")
	caSigned := ca.issue(t, "cucm", localhost)
	caSignedName := ca.issue(t, "cucm", nil, "cucm.lab.example")
	caSignedElsewhere := ca.issue(t, "cucm", []net.IP{net.IPv4(192, 0, 2, 9)})

	withServerName := peerAt("cucm", VerifyCA, "")
	withServerName.ServerName = "cucm.lab.example"

	tests := []struct {
		name       string
		serverCert tls.Certificate
		tls        TLS
		peer       Peer
		wantErr    string // "" for success
		wantPinErr bool   // the error wraps ErrPeerCertificate
	}{
		{"pinned fingerprint matches", peerCert, TLS{}, peerAt("cucm", VerifyFingerprint, peerFP), "", false},
		{"pinned fingerprint with colons and capitals", peerCert, TLS{}, peerAt("cucm", VerifyFingerprint, colonise(peerFP)), "", false},
		{"pinned fingerprint mismatch", peerCert, TLS{}, peerAt("cucm", VerifyFingerprint, otherFP), "presented certificate sha256 " + peerFP + ", pinned " + otherFP, true},
		{"ca chain and IP", caSigned, TLS{CABundle: ca.bundle(t)}, peerAt("cucm", VerifyCA, ""), "", false},
		{"ca chain and server_name", caSignedName, TLS{CABundle: ca.bundle(t)}, withServerName, "", false},
		{"ca wrong CA", caSigned, TLS{CABundle: wrongCA.bundle(t)}, peerAt("cucm", VerifyCA, ""), "certificate signed by unknown authority", false},
		{"ca self-signed peer", peerCert, TLS{CABundle: ca.bundle(t)}, peerAt("cucm", VerifyCA, ""), "certificate signed by unknown authority", false},
		{"ca certificate for another address", caSignedElsewhere, TLS{CABundle: ca.bundle(t)}, peerAt("cucm", VerifyCA, ""), "127.0.0.1", false},
		{"insecure-lab accepts anything", peerCert, TLS{}, peerAt("cucm", VerifyInsecureLab, ""), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := ServerTLSConfig(&TLS{ClientAuth: "none"}, tt.serverCert, nil)
			if err != nil {
				t.Fatal(err)
			}
			client, err := ClientTLSConfig(&tt.tls, ours, &tt.peer)
			if err != nil {
				t.Fatal(err)
			}
			_, clientErr := handshake(t, server, client)
			switch {
			case tt.wantErr == "" && clientErr != nil:
				t.Fatalf("handshake failed: %v", clientErr)
			case tt.wantErr != "" && clientErr == nil:
				t.Fatalf("handshake succeeded, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(clientErr.Error(), tt.wantErr):
				t.Errorf("error %q, want …%s…", clientErr, tt.wantErr)
			}
			if got := errors.Is(clientErr, ErrPeerCertificate); got != tt.wantPinErr {
				t.Errorf("errors.Is(%v, ErrPeerCertificate) = %v", clientErr, got)
			}
		})
	}
}

func colonise(hexfp string) string {
	var parts []string
	for i := 0; i < len(hexfp); i += 2 {
		parts = append(parts, strings.ToUpper(hexfp[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// TestServerClientAuth is a peer dialling ccsbc: the client certificate it
// presents (or not) against client_auth and the peers' verify settings.
func TestServerClientAuth(t *testing.T) {
	ours, _ := instanceCert(t)
	known, knownFP := instanceCert(t)
	stranger, _ := instanceCert(t)
	ca := newTestCA(t, "lab CA")
	wrongCA := newTestCA(t, "someone else's CA")
	caBundle := ca.bundle(t)

	pinned := []Peer{peerAt("cucm", VerifyFingerprint, knownFP)}
	tests := []struct {
		name       string
		tls        TLS
		peers      []Peer
		clientCert *tls.Certificate // nil: the client presents none
		ok         bool
	}{
		{"request, none presented", TLS{ClientAuth: "request"}, pinned, nil, true},
		{"request, pinned", TLS{ClientAuth: "request"}, pinned, &known, true},
		{"request, stranger", TLS{ClientAuth: "request"}, pinned, &stranger, false},
		{"require, none presented", TLS{ClientAuth: "require"}, pinned, nil, false},
		{"require, pinned", TLS{ClientAuth: "require"}, pinned, &known, true},
		{"require, stranger", TLS{ClientAuth: "require"}, pinned, &stranger, false},
		{"require, no peers at all", TLS{ClientAuth: "require"}, nil, &known, false},
		{"require, insecure-lab peer accepts a stranger", TLS{ClientAuth: "require"},
			append([]Peer{peerAt("lab", VerifyInsecureLab, "")}, pinned...), &stranger, true},
		{"require, CA-signed for a verify: ca peer", TLS{ClientAuth: "require", CABundle: caBundle},
			[]Peer{peerAt("cvp", VerifyCA, "")}, ptr(ca.issue(t, "cvp", localhost)), true},
		{"require, other CA", TLS{ClientAuth: "require", CABundle: caBundle},
			[]Peer{peerAt("cvp", VerifyCA, "")}, ptr(wrongCA.issue(t, "cvp", localhost)), false},
		{"require, CA-signed but no peer trusts the CA", TLS{ClientAuth: "require", CABundle: caBundle},
			pinned, ptr(ca.issue(t, "cvp", localhost)), false},
		{"none, nothing asked", TLS{ClientAuth: "none"}, nil, &stranger, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := ServerTLSConfig(&tt.tls, ours, tt.peers)
			if err != nil {
				t.Fatal(err)
			}
			client := &tls.Config{InsecureSkipVerify: true}
			if tt.clientCert != nil {
				client.Certificates = []tls.Certificate{*tt.clientCert}
			}
			serverErr, clientErr := handshake(t, server, client)
			if tt.ok && (serverErr != nil || clientErr != nil) {
				t.Fatalf("refused: server %v, client %v", serverErr, clientErr)
			}
			if !tt.ok && (serverErr == nil || clientErr == nil) {
				t.Fatalf("accepted: server %v, client %v", serverErr, clientErr)
			}
			if !tt.ok && tt.clientCert != nil && !errors.Is(serverErr, ErrPeerCertificate) {
				t.Errorf("server error %v does not wrap ErrPeerCertificate", serverErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestMinVersion: a TLS 1.1 client is refused by the default (1.2) server
// and accepted only when the operator lowers min_version.
func TestMinVersion(t *testing.T) {
	ours, fp := instanceCert(t)
	old := func(t *testing.T) *tls.Config {
		c, err := ClientTLSConfig(&TLS{MinVersion: "1.0"}, ours, ptr(peerAt("sbc", VerifyFingerprint, fp)))
		if err != nil {
			t.Fatal(err)
		}
		c.MaxVersion = tls.VersionTLS11
		return c
	}
	for _, tt := range []struct {
		min string
		ok  bool
	}{{"", false}, {"1.2", false}, {"1.3", false}, {"1.1", true}} {
		t.Run("min_version "+tt.min, func(t *testing.T) {
			server, err := ServerTLSConfig(&TLS{MinVersion: tt.min, ClientAuth: "none"}, ours, nil)
			if err != nil {
				t.Fatal(err)
			}
			serverErr, clientErr := handshake(t, server, old(t))
			if tt.ok != (serverErr == nil && clientErr == nil) {
				t.Errorf("TLS 1.1 client: server %v, client %v; want ok=%v", serverErr, clientErr, tt.ok)
			}
			if !tt.ok && serverErr != nil && !strings.Contains(serverErr.Error(), "unsupported versions") {
				t.Errorf("server error %q does not say why", serverErr)
			}
		})
	}
	server, _ := ServerTLSConfig(&TLS{}, ours, nil)
	if server.MinVersion != tls.VersionTLS12 {
		t.Errorf("default MinVersion = %x", server.MinVersion)
	}
}

// TestGeneratedCertificate: one certificate per instance, kept and reused,
// its key private to the daemon.
func TestGeneratedCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ccsbc")
	c := &TLS{StateDir: dir}
	cert1, fp1, err := LoadOrCreateCertificate(c)
	if err != nil {
		t.Fatal(err)
	}
	cert2, fp2, err := LoadOrCreateCertificate(c)
	if err != nil {
		t.Fatal(err)
	}
	if fp1 != fp2 || string(cert1.Certificate[0]) != string(cert2.Certificate[0]) {
		t.Errorf("second call made a new certificate: %s then %s", fp1, fp2)
	}
	if fp1 != Fingerprint(cert1.Certificate[0]) || len(fp1) != 64 || strings.ToLower(fp1) != fp1 {
		t.Errorf("fingerprint %q", fp1)
	}

	for path, want := range map[string]os.FileMode{
		dir:                               0o700 | os.ModeDir,
		filepath.Join(dir, stateKeyFile):  0o600,
		filepath.Join(dir, stateCertFile): 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("state dir holds %d files, want ccsbc.crt and ccsbc.key (no temporaries)", len(entries))
	}

	leaf, err := x509.ParseCertificate(cert1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok || pub.Curve != elliptic.P256():
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	case leaf.Subject.CommonName != "ccsbc":
		t.Errorf("CN %q", leaf.Subject.CommonName)
	case leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() < 64:
		t.Errorf("serial %v does not look random", leaf.SerialNumber)
	case leaf.NotAfter.Sub(leaf.NotBefore) < 10*365*24*time.Hour:
		t.Errorf("valid %v → %v, want ten years", leaf.NotBefore, leaf.NotAfter)
	case leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("::1") != nil || leaf.VerifyHostname("localhost") != nil:
		t.Errorf("SANs %v %v", leaf.IPAddresses, leaf.DNSNames)
	case host != "" && leaf.VerifyHostname(host) != nil:
		t.Errorf("SANs %v %v lack the host name %q", leaf.IPAddresses, leaf.DNSNames, host)
	}

	// A key others can read is refused, not used.
	if err := os.Chmod(filepath.Join(dir, stateKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCertificate(c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	// A certificate without its key is not silently replaced: peers may
	// have pinned it.
	os.Remove(filepath.Join(dir, stateKeyFile))
	if _, _, err := LoadOrCreateCertificate(c); err == nil || !strings.Contains(err.Error(), "restore the key") {
		t.Errorf("certificate without key: %v", err)
	}
	// A key without its certificate is an interrupted first start.
	os.Remove(filepath.Join(dir, stateCertFile))
	os.WriteFile(filepath.Join(dir, stateKeyFile), []byte("partial"), 0o600)
	if _, fp, err := LoadOrCreateCertificate(c); err != nil || fp == fp1 {
		t.Errorf("key without certificate: %v, %s", err, fp)
	}
}

func TestConfiguredCertificate(t *testing.T) {
	ca := newTestCA(t, "lab CA")
	leaf := ca.issue(t, "sbc", localhost)
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "sbc.crt"), filepath.Join(dir, "sbc.key")
	der, _ := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	cert, fp, err := LoadOrCreateCertificate(&TLS{Certificate: crt, Key: key, StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	if fp != Fingerprint(leaf.Certificate[0]) || string(cert.Certificate[0]) != string(leaf.Certificate[0]) {
		t.Errorf("loaded another certificate")
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a configured certificate must not touch the state directory")
	}

	// A mismatched pair fails without showing key bytes.
	os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"), 0o600)
	_, _, err = LoadOrCreateCertificate(&TLS{Certificate: crt, Key: key})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad key: %v", err)
	}
	if _, _, err := LoadOrCreateCertificate(&TLS{Certificate: crt}); err == nil {
		t.Errorf("certificate without key accepted")
	}
}

func TestStateDirectory(t *testing.T) {
	tests := []struct {
		name                   string
		configured, state, xdg string
		home                   string
		want                   string
	}{
		{"configured wins", "/etc/ccsbc", "/var/lib/ccsbc", "/x", "/home/u", "/etc/ccsbc"},
		{"systemd", "", "/var/lib/ccsbc", "/x", "/home/u", "/var/lib/ccsbc"},
		{"systemd, several", "", "/var/lib/ccsbc:/var/lib/other", "", "/home/u", "/var/lib/ccsbc"},
		{"xdg", "", "", "/home/u/.state", "/home/u", "/home/u/.state/ccsbc"},
		{"relative xdg is ignored", "", "", "state", "/home/u", "/home/u/.local/state/ccsbc"},
		{"home", "", "", "", "/home/u", "/home/u/.local/state/ccsbc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tt.state)
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := (&TLS{StateDir: tt.configured}).StateDirectory()
			if err != nil || got != tt.want {
				t.Errorf("StateDirectory() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestTLSConfigFailClosed: what cannot be verified is an error when the
// tls.Config is built, never a config that verifies less.
func TestTLSConfigFailClosed(t *testing.T) {
	ours, _ := instanceCert(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)

	clientTests := []struct {
		name string
		tls  TLS
		peer Peer
		want string
	}{
		{"ca without bundle", TLS{}, peerAt("cucm", VerifyCA, ""), `peer "cucm" has verify: ca but tls.ca_bundle is not set`},
		{"unreadable bundle", TLS{CABundle: missing}, peerAt("cucm", VerifyCA, ""), "no such file"},
		{"bundle without certificates", TLS{CABundle: empty}, peerAt("cucm", VerifyCA, ""), "holds no PEM certificate"},
		{"malformed pin", TLS{}, peerAt("cucm", VerifyFingerprint, "abcd"), `peer "cucm": config: fingerprint "abcd" is 2 bytes`},
		{"unknown verify", TLS{}, peerAt("cucm", "trust-me", ""), `verify "trust-me" is not one of`},
		{"bad min_version", TLS{MinVersion: "1.4"}, peerAt("cucm", VerifyInsecureLab, ""), `min_version "1.4"`},
	}
	for _, tt := range clientTests {
		t.Run("client "+tt.name, func(t *testing.T) {
			cfg, err := ClientTLSConfig(&tt.tls, ours, &tt.peer)
			if err == nil || cfg != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientTLSConfig = %v, %v; want error …%s…", cfg, err, tt.want)
			}
		})
	}

	serverTests := []struct {
		name  string
		tls   TLS
		peers []Peer
		want  string
	}{
		{"unreadable bundle", TLS{CABundle: missing}, nil, "no such file"},
		{"malformed pin", TLS{}, []Peer{peerAt("cucm", VerifyFingerprint, "zz")}, "is not hex"},
		{"bad client_auth", TLS{ClientAuth: "optional"}, nil, `client_auth "optional"`},
	}
	for _, tt := range serverTests {
		t.Run("server "+tt.name, func(t *testing.T) {
			cfg, err := ServerTLSConfig(&tt.tls, ours, tt.peers)
			if err == nil || cfg != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServerTLSConfig = %v, %v; want error …%s…", cfg, err, tt.want)
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	der := []byte("not really a certificate")
	fp := Fingerprint(der)
	// sha256sum of the same bytes: lowercase hex, no colons.
	if fp != "d6182255e5739d55fc9781759c7a823d4dff3d2b7d17949e7085ee7c0cc22acf" {
		t.Fatalf("Fingerprint = %q", fp)
	}
	tests := []struct {
		in      string
		wantErr string
	}{
		{fp, ""},
		{strings.ToUpper(fp), ""},
		{colonise(fp), ""},
		{"  " + colonise(fp) + "\n", ""},
		{fp[:40], "is 20 bytes, a SHA-1"},
		{fp + "00", "is 33 bytes; a SHA-256 is 32"},
		{"", "is 0 bytes"},
		{fp[:63], "is not hex"},
		{strings.Replace(fp, fp[:2], "g1", 1), "is not hex"},
	}
	for _, tt := range tests {
		b, err := ParseFingerprint(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || hex.EncodeToString(b) != fp):
			t.Errorf("ParseFingerprint(%q) = %x, %v", tt.in, b, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseFingerprint(%q) error %v, want …%s…", tt.in, err, tt.wantErr)
		}
	}
}
