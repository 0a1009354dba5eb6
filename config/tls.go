package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The generated certificate's files in TLS.StateDir.
const (
	stateCertFile = "ccsbc.crt"
	stateKeyFile  = "ccsbc.key"
)

// certMu serialises LoadOrCreateCertificate, so that two listeners
// starting together do not generate two certificates.
var certMu sync.Mutex

// StateDirectory resolves StateDir: the configured one, else
// $STATE_DIRECTORY (set by systemd's StateDirectory=; the first when it
// lists several), else $XDG_STATE_HOME/ccsbc, else ~/.local/state/ccsbc.
func (t *TLS) StateDirectory() (string, error) {
	if t.StateDir != "" {
		return t.StateDir, nil
	}
	if v := os.Getenv("STATE_DIRECTORY"); v != "" {
		first, _, _ := strings.Cut(v, ":")
		return first, nil
	}
	// The XDG spec says a relative XDG_STATE_HOME is invalid and ignored.
	if v := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(v) {
		return filepath.Join(v, "ccsbc"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config: tls: no state directory, set tls.state_dir: %w", err)
	}
	return filepath.Join(home, ".local", "state", "ccsbc"), nil
}

// LoadOrCreateCertificate returns the instance certificate and the
// lowercase hex SHA-256 of its DER, the fingerprint peers pin.
//
// With tls.certificate and tls.key set it loads them. Otherwise it loads
// ccsbc.crt and ccsbc.key from the state directory, generating them on
// first use: a self-signed ECDSA P-256 certificate for CN ccsbc, valid ten
// years, naming 127.0.0.1, ::1, localhost and the host name. One
// certificate per instance: later calls, and later starts, reuse it, so a
// peer's pin stays valid. The key is written mode 0600 in a 0700
// directory, atomically; a state key readable by others is refused.
//
// Errors never carry key material.
func LoadOrCreateCertificate(c *TLS) (cert tls.Certificate, fingerprintSHA256Hex string, err error) {
	if c.Certificate != "" || c.Key != "" {
		if c.Certificate == "" || c.Key == "" {
			return tls.Certificate{}, "", errors.New("config: tls: certificate and key must be set together")
		}
		cert, err := tls.LoadX509KeyPair(c.Certificate, c.Key)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("config: tls: load %s and %s: %w", c.Certificate, c.Key, err)
		}
		return cert, Fingerprint(cert.Certificate[0]), nil
	}
	dir, err := c.StateDirectory()
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certMu.Lock()
	defer certMu.Unlock()
	return loadOrCreate(dir, time.Now())
}

func loadOrCreate(dir string, now time.Time) (tls.Certificate, string, error) {
	certPath, keyPath := filepath.Join(dir, stateCertFile), filepath.Join(dir, stateKeyFile)
	_, certErr := os.Stat(certPath)
	keyInfo, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		// The key is ours to guard, as ssh guards its keys.
		if perm := keyInfo.Mode().Perm(); perm&0o077 != 0 {
			return tls.Certificate{}, "", fmt.Errorf("config: tls: %s is readable by others (mode %#o); chmod 600 it", keyPath, perm)
		}
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("config: tls: load %s and %s: %w", certPath, keyPath, err)
		}
		return cert, Fingerprint(cert.Certificate[0]), nil
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		// Peers may have pinned this certificate: replacing it silently
		// would break them, so ask.
		return tls.Certificate{}, "", fmt.Errorf("config: tls: %s exists but %s does not; restore the key, or remove the certificate to generate a new pair (and update the peers that pinned it)", certPath, keyPath)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return tls.Certificate{}, "", fmt.Errorf("config: tls: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return tls.Certificate{}, "", fmt.Errorf("config: tls: %w", keyErr)
	}
	// Neither file, or a key alone: the key is written first, so a key
	// alone is a first start that was interrupted. Generate both.
	hostname, _ := os.Hostname()
	certPEM, keyPEM, err := generateCertificate(now, hostname)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("config: tls: state directory: %w", err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("config: tls: generated certificate: %w", err)
	}
	return cert, Fingerprint(cert.Certificate[0]), nil
}

// generateCertificate makes the instance's self-signed certificate and
// returns it and its key, PEM encoded.
func generateCertificate(now time.Time, hostname string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("config: tls: generate key: %w", err)
	}
	// RFC 5280 section 4.1.2.2: positive, at most 20 octets, unique.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("config: tls: serial number: %w", err)
	}
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ccsbc"},
		// An hour back, for peers whose clock runs slow.
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.AddDate(10, 0, 0),
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// ccsbc is the TLS server of inbound calls and the client of
		// outbound ones, with the same certificate.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	if hostname != "" && hostname != "localhost" {
		if ip := net.ParseIP(hostname); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, hostname)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("config: tls: create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("config: tls: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// writeFileAtomic writes data to path through a temporary file in the
// same directory and a rename, so that a crash leaves the old file or the
// new one, never half of one. The temporary file is created 0600, so key
// bytes are never readable by others even for a moment.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("config: tls: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("config: tls: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("config: tls: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("config: tls: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config: tls: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("config: tls: %w", err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Fingerprint is the SHA-256 of a certificate's DER in lowercase hex
// without colons, as ccsbc logs it and as peers may pin it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint decodes a SHA-256 fingerprint written as 64 hex digits,
// either case, colons allowed (openssl's AB:CD:... form).
func ParseFingerprint(s string) ([]byte, error) {
	b, msg := parseFingerprint(s)
	if msg != "" {
		return nil, fmt.Errorf("config: fingerprint %s", msg)
	}
	return b, nil
}

// parseFingerprint returns the fingerprint's bytes, or why it is not one.
func parseFingerprint(s string) ([]byte, string) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("%q is not hex; write the SHA-256 as 64 hex digits, colons allowed", s)
	case len(b) == 20:
		// openssl x509 -fingerprint prints SHA-1 unless told otherwise.
		return nil, fmt.Sprintf("%q is 20 bytes, a SHA-1; pin the SHA-256 instead: openssl x509 -noout -fingerprint -sha256 -in peer.pem", s)
	case len(b) != sha256.Size:
		return nil, fmt.Sprintf("%q is %d bytes; a SHA-256 is 32 (64 hex digits)", s, len(b))
	}
	return b, ""
}

// CipherSuites are the TLS 1.2 cipher suites ccsbc offers and accepts,
// given the minimum version: with TLS 1.2 or later, forward-secret AEAD
// suites only (ECDHE with AES-GCM or ChaCha20-Poly1305, what Unified CM
// 12.5+, CVP and VVB negotiate); Go's defaults, which add ECDHE with
// AES-CBC, when a legacy peer forced 1.0 or 1.1 (those versions have no
// AEAD suite). TLS 1.3's suites are not configurable and all AEAD.
func CipherSuites(minVersion uint16) []uint16 {
	if minVersion < tls.VersionTLS12 {
		return nil
	}
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// tlsVersion maps min_version to a crypto/tls version; "" is the default.
func tlsVersion(v string) (uint16, error) {
	switch v {
	case "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("config: tls: min_version %q is not one of 1.0, 1.1, 1.2, 1.3", v)
}

// loadBundle reads a PEM CA bundle; an unreadable or empty one is an
// error, never "trust nothing" or "trust the system".
func loadBundle(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: tls: ca_bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("config: tls: ca_bundle: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// ServerTLSConfig returns the tls.Config of the TLS listeners: cert, the
// minimum version, and client certificates asked for per client_auth
// (none, request, require).
//
// crypto/tls only asks for the client certificate (RequestClientCert,
// RequireAnyClientCert); verifying it is VerifyConnection's job, which
// also runs on resumed sessions. A presented certificate is accepted if
// its SHA-256 is the pin of a verify: fingerprint peer, or it chains to
// tls.ca_bundle when some peer has verify: ca, or if any peer is
// verify: insecure-lab. Otherwise the handshake fails with an error that
// wraps ErrPeerCertificate. Every peer counts, whatever its transport: a
// peer reached over UDP may still connect in over TLS.
//
// Which peer a certificate belongs to, and whether that fits the source
// address, is for the SIP layer to decide after the handshake.
func ServerTLSConfig(c *TLS, cert tls.Certificate, peers []Peer) (*tls.Config, error) {
	minVersion, err := tlsVersion(c.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minVersion,
		CipherSuites: CipherSuites(minVersion),
	}
	switch c.ClientAuth {
	case "none":
		return cfg, nil
	case "", "request":
		cfg.ClientAuth = tls.RequestClientCert
	case "require":
		cfg.ClientAuth = tls.RequireAnyClientCert
	default:
		return nil, fmt.Errorf("config: tls: client_auth %q is not one of none, request, require", c.ClientAuth)
	}
	v := &clientVerifier{}
	needCA := false
	for _, p := range peers {
		switch p.Verify {
		case VerifyFingerprint:
			pin, err := ParseFingerprint(p.Fingerprint)
			if err != nil {
				return nil, fmt.Errorf("config: tls: peer %q: %w", p.Name, err)
			}
			v.pins = append(v.pins, pin)
		case VerifyInsecureLab:
			v.anyCert = true
		case VerifyCA, "":
			needCA = true
		default:
			return nil, fmt.Errorf("config: tls: peer %q: verify %q is not one of ca, fingerprint, insecure-lab", p.Name, p.Verify)
		}
	}
	// A configured bundle must load even if unused: fail closed on a
	// broken file rather than discover it at the first verify: ca peer.
	if c.CABundle != "" {
		pool, err := loadBundle(c.CABundle)
		if err != nil {
			return nil, err
		}
		if needCA {
			v.roots = pool
		}
	}
	cfg.VerifyConnection = v.verify
	return cfg, nil
}

// clientVerifier checks inbound clients' certificates against the peers.
type clientVerifier struct {
	pins    [][]byte       // SHA-256 pins of verify: fingerprint peers
	roots   *x509.CertPool // tls.ca_bundle if a peer has verify: ca
	anyCert bool           // a peer has verify: insecure-lab
}

func (v *clientVerifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		// Nothing presented: allowed with request; require is enforced
		// by crypto/tls before this runs.
		return nil
	}
	if v.anyCert {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	for _, pin := range v.pins {
		if subtle.ConstantTimeCompare(sum[:], pin) == 1 {
			return nil
		}
	}
	if v.roots == nil {
		return fmt.Errorf("%w: client certificate %q (sha256 %x) is pinned by no peer", ErrPeerCertificate, leaf.Subject.String(), sum)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: client certificate %q (sha256 %x) is pinned by no peer and does not chain to tls.ca_bundle: %v", ErrPeerCertificate, leaf.Subject.String(), sum, err)
	}
	return nil
}

// ClientTLSConfig returns the tls.Config for connecting to peer p: it
// presents cert, holds to the minimum version and checks p's certificate
// per p.Verify:
//
//   - ca: chains to tls.ca_bundle and names p.ServerName, or else the IP
//     of p.Address;
//   - fingerprint: its leaf's SHA-256 equals p.Fingerprint (compared in
//     constant time); the chain and names are not checked, the pin is
//     the trust;
//   - insecure-lab: anything is accepted.
//
// It fails closed: an unreadable bundle or a malformed pin is an error
// here, and a certificate that does not verify fails the handshake with an
// error wrapping ErrPeerCertificate (or crypto/tls's own, for ca), never a
// fallback to an unverified or non-TLS connection.
func ClientTLSConfig(c *TLS, cert tls.Certificate, p *Peer) (*tls.Config, error) {
	if p == nil {
		return nil, errors.New("config: tls: no peer")
	}
	minVersion, err := tlsVersion(c.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minVersion,
		CipherSuites: CipherSuites(minVersion),
		ServerName:   serverName(p),
	}
	switch p.Verify {
	case VerifyCA, "":
		if c.CABundle == "" {
			return nil, fmt.Errorf("config: tls: peer %q has verify: ca but tls.ca_bundle is not set", p.Name)
		}
		if cfg.ServerName == "" {
			return nil, fmt.Errorf("config: tls: peer %q has no address or server_name to verify its certificate against", p.Name)
		}
		if cfg.RootCAs, err = loadBundle(c.CABundle); err != nil {
			return nil, err
		}
	case VerifyFingerprint:
		pin, err := ParseFingerprint(p.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("config: tls: peer %q: %w", p.Name, err)
		}
		name := p.Name
		// Not skipped: the chain check is replaced by the pin check below.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: peer %q presented no certificate", ErrPeerCertificate, name)
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("%w: peer %q presented certificate sha256 %x, pinned %x", ErrPeerCertificate, name, sum, pin)
			}
			return nil
		}
	case VerifyInsecureLab:
		cfg.InsecureSkipVerify = true
	default:
		return nil, fmt.Errorf("config: tls: peer %q: verify %q is not one of ca, fingerprint, insecure-lab", p.Name, p.Verify)
	}
	return cfg, nil
}

// serverName is the name p's certificate must carry: ServerName, else the
// IP of its address (crypto/tls checks an IP against the IP SANs, and
// sends no SNI for it).
func serverName(p *Peer) string {
	if p.ServerName != "" {
		return p.ServerName
	}
	if !p.Address.IsValid() {
		return ""
	}
	return p.Address.Addr().WithZone("").String()
}

// PeerVerifier checks, after the handshake, that a TLS connection ccsbc
// dialled reached the peer it was dialled for, the way p.Verify says (see
// ClientTLSConfig). ccsbc's outbound connections share one transport, so
// the check runs on the established connection, before any request is
// written on it.
type PeerVerifier struct {
	roots *x509.CertPool
}

// NewPeerVerifier loads tls.ca_bundle (if set) once.
func NewPeerVerifier(c *TLS) (*PeerVerifier, error) {
	v := &PeerVerifier{}
	if c.CABundle != "" {
		pool, err := loadBundle(c.CABundle)
		if err != nil {
			return nil, err
		}
		v.roots = pool
	}
	return v, nil
}

// Verify fails closed with an error wrapping ErrPeerCertificate.
func (v *PeerVerifier) Verify(p *Peer, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: peer %q presented no certificate", ErrPeerCertificate, p.Name)
	}
	leaf := cs.PeerCertificates[0]
	switch p.Verify {
	case VerifyInsecureLab:
		return nil
	case VerifyFingerprint:
		pin, err := ParseFingerprint(p.Fingerprint)
		if err != nil {
			return fmt.Errorf("%w: peer %q: %v", ErrPeerCertificate, p.Name, err)
		}
		sum := sha256.Sum256(leaf.Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return fmt.Errorf("%w: peer %q presented certificate sha256 %x, pinned %x", ErrPeerCertificate, p.Name, sum, pin)
		}
		return nil
	case VerifyCA, "":
		if v.roots == nil {
			return fmt.Errorf("%w: peer %q has verify: ca but tls.ca_bundle is not set", ErrPeerCertificate, p.Name)
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, DNSName: serverName(p)})
		if err != nil {
			return fmt.Errorf("%w: peer %q: %v", ErrPeerCertificate, p.Name, err)
		}
		return nil
	}
	return fmt.Errorf("%w: peer %q: verify %q is not one of ca, fingerprint, insecure-lab", ErrPeerCertificate, p.Name, p.Verify)
}
