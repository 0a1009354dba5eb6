package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Cert is a throwaway self-signed certificate (ECDSA P-256) for 127.0.0.1,
// written under the test's temp dir in the shapes the peers want.
type Cert struct {
	CertPEM []byte
	KeyPEM  []byte
	// CertFile and KeyFile hold one each; PEMFile holds the certificate
	// then the key (baresip's sip_certificate wants both in one file).
	CertFile, KeyFile, PEMFile string
	// Fingerprint is the SHA-256 of the DER certificate, upper-case hex
	// with colons (the a=fingerprint / pinned-fingerprint form).
	Fingerprint string
	TLS         tls.Certificate
	X509        *x509.Certificate
}

// SelfSigned makes a certificate named cn, valid for a day for 127.0.0.1
// and localhost, for both server and client use. The files are named after
// cn.
func SelfSigned(t testing.TB, cn string) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"ccsbc lab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own CA, usable as a trust anchor
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	c.X509, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c.TLS = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c.X509}
	sum := sha256.Sum256(der)
	c.Fingerprint = fingerprint(sum[:])

	dir := t.TempDir()
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, cn)
	c.CertFile = filepath.Join(dir, base+".crt")
	c.KeyFile = filepath.Join(dir, base+".key")
	c.PEMFile = filepath.Join(dir, base+".pem")
	for path, data := range map[string][]byte{
		c.CertFile: c.CertPEM,
		c.KeyFile:  c.KeyPEM,
		c.PEMFile:  append(append([]byte{}, c.CertPEM...), c.KeyPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func fingerprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
