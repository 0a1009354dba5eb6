package admin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ccsbc/ccsbc/config"
)

func TestHashToken(t *testing.T) {
	// FIPS 180-2 test vector: SHA-256("abc").
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewToken()
	if !strings.HasPrefix(tok, "ccsbc_") || len(tok) != len("ccsbc_")+43 || tok == other {
		t.Errorf("NewToken = %q, %q", tok, other)
	}
	// What HashToken prints is what the configuration accepts.
	cfg, err := config.Parse("t.yaml", []byte("model: 1\nlisteners: [{transport: udp, address: 127.0.0.1:5060}]\nadmin:\n  tokens: [{name: a, role: read, sha256: "+HashToken(tok)+"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredentials(&cfg.Admin)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/calls", nil)
	r.Header.Set("Authorization", "bearer "+tok) // the scheme is case-insensitive (RFC 9110 §11.1)
	if id, err := c.Authenticate(r); err != nil || id != (Identity{Name: "a", Method: MethodToken}) {
		t.Errorf("Authenticate = %+v, %v", id, err)
	}
}

// TestRolesTable is the authorization table, cell by cell.
func TestRolesTable(t *testing.T) {
	actions := []Action{ActionReady, ActionMetrics, ActionCalls, ActionReload, ActionDrain, ActionSetLogLevel}
	for _, role := range []Role{RoleRead, RoleOperate, RoleAdmin, "root", ""} {
		for _, a := range actions {
			if got := role.Allows(a); got != allowed[role][a] {
				t.Errorf("%q allows %s = %v, want %v", role, a, got, allowed[role][a])
			}
		}
	}
	// Each role includes the ones below it.
	for _, a := range actions {
		if RoleRead.Allows(a) && !RoleOperate.Allows(a) || RoleOperate.Allows(a) && !RoleAdmin.Allows(a) {
			t.Errorf("%s: roles are not nested", a)
		}
	}
	// config's roles and admin's are the same.
	for _, r := range config.AdminRoles {
		if _, ok := roleActions[Role(r)]; !ok {
			t.Errorf("config role %q has no actions", r)
		}
	}
}

// TestAuthorizerKeepsMethodsApart: a token and a certificate are distinct
// identities, even under one name in a configuration built in code.
func TestAuthorizerKeepsMethodsApart(t *testing.T) {
	a := &config.Admin{
		Tokens:  []config.AdminToken{{Name: "ops", SHA256: HashToken("x"), Role: "admin"}},
		Clients: []config.AdminClient{{Name: "nms", Fingerprint: strings.Repeat("ab", 32), Role: "read"}},
	}
	r, err := NewRoles(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Authorize(Identity{Name: "ops", Method: MethodToken}, ActionDrain); err != nil {
		t.Errorf("token ops: %v", err)
	}
	if err := r.Authorize(Identity{Name: "ops", Method: MethodCertificate}, ActionReady); !errors.Is(err, ErrForbidden) {
		t.Errorf("certificate named like a token: %v", err)
	}
	if err := r.Authorize(Identity{Name: "nms", Method: MethodCertificate}, ActionDrain); !errors.Is(err, ErrForbidden) ||
		err.Error() != `admin: forbidden: "nms" has role read, which does not allow drain` {
		t.Errorf("read draining: %v", err)
	}
	if role, ok := r.Role(Identity{Name: "nms", Method: MethodCertificate}); !ok || role != RoleRead {
		t.Errorf("Role(nms) = %q, %v", role, ok)
	}

	a.Tokens[0].Role = "superuser"
	if _, err := NewRoles(a); err == nil || !strings.Contains(err.Error(), `role "superuser" is not one of read, operate, admin`) {
		t.Errorf("unknown role: %v", err)
	}
	a.Tokens[0].SHA256 = "s3cret-token"
	if _, err := NewCredentials(a); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad hash: %v", err)
	}
}

// TestAuthenticateCertificate covers the certificate path without a
// listener: the first certificate of the chain is the one pinned.
func TestAuthenticateCertificate(t *testing.T) {
	cert, fp := newCert(t, "nms")
	other, _ := newCert(t, "other")
	c, err := NewCredentials(&config.Admin{Clients: []config.AdminClient{{Name: "nms", Fingerprint: fp, Role: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(chain ...tls.Certificate) *http.Request {
		r := httptest.NewRequest("GET", "/calls", nil)
		r.TLS = &tls.ConnectionState{}
		for _, c := range chain {
			x, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			r.TLS.PeerCertificates = append(r.TLS.PeerCertificates, x)
		}
		return r
	}
	if id, err := c.Authenticate(req(cert)); err != nil || id != (Identity{Name: "nms", Method: MethodCertificate}) {
		t.Errorf("pinned: %+v %v", id, err)
	}
	if _, err := c.Authenticate(req(other, cert)); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("pinned certificate as an intermediate: %v", err)
	}
	if _, err := c.Authenticate(req()); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("TLS without a certificate: %v", err)
	}
	r := req()
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if _, err := c.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("two Authorization headers: %v", err)
	}
}
