package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ccsbc/ccsbc/config"
)

// Authentication and authorization are kept apart, as the CCE security
// guide asks of every administrative interface: an Authenticator says who
// is asking (an Identity, from a credential), an Authorizer says what that
// identity may do (its Role's Actions). Neither knows of the other; the
// Server runs one, then the other.

// Method is how an identity was authenticated.
type Method string

// Authentication methods.
const (
	MethodToken       Method = "token"       // Authorization: Bearer
	MethodCertificate Method = "certificate" // TLS client certificate
)

// Identity is who made a request: the name of the configured token or
// client whose credential it presented. It never holds the credential.
type Identity struct {
	Name   string
	Method Method
}

// Authenticator turns a request into an identity.
//
// Authenticate returns ErrNoCredentials when the request presents none,
// and an error wrapping ErrUnauthenticated when it presents one that is
// not accepted. A credential that is presented is always checked, never
// ignored: a wrong client certificate fails the request even if it also
// carries a good token. Errors are safe to log: they never hold a token.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Authorizer decides whether an authenticated identity may perform an
// action. Authorize returns nil when it may, else an error wrapping
// ErrForbidden that names the identity, its role and the action (safe to
// log and to show the client).
type Authorizer interface {
	Authorize(id Identity, a Action) error
}

// Action is something the admin API does; each endpoint performs one.
type Action string

// Actions, by endpoint.
const (
	ActionReady       Action = "ready"         // GET /readyz
	ActionMetrics     Action = "metrics"       // GET /metrics
	ActionCalls       Action = "calls"         // GET /calls
	ActionReload      Action = "reload"        // POST /reload
	ActionDrain       Action = "drain"         // POST /drain
	ActionSetLogLevel Action = "set-log-level" // PUT /log/level
)

// Role is a set of allowed actions; each role includes the ones below it.
type Role string

// Roles, as admin.tokens[].role and admin.clients[].role spell them.
const (
	RoleRead    Role = config.AdminRoleRead
	RoleOperate Role = config.AdminRoleOperate
	RoleAdmin   Role = config.AdminRoleAdmin
)

// roleActions is the authorization table: role → the actions it allows.
var roleActions = map[Role][]Action{
	RoleRead:    {ActionReady, ActionMetrics, ActionCalls},
	RoleOperate: {ActionReady, ActionMetrics, ActionCalls, ActionReload, ActionDrain},
	RoleAdmin:   {ActionReady, ActionMetrics, ActionCalls, ActionReload, ActionDrain, ActionSetLogLevel},
}

// Allows reports whether the role allows action a. An unknown role
// allows nothing.
func (r Role) Allows(a Action) bool { return slices.Contains(roleActions[r], a) }

// HashToken returns the lowercase hex SHA-256 of token: what
// admin.tokens[].sha256 holds. The token is hashed as given, byte for
// byte; trim a trailing newline before calling it.
//
// A plain SHA-256 (no salt, no stretching) is enough because tokens are
// long random strings, as NewToken makes them, not passwords: there is
// nothing for a dictionary to guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenPrefix marks ccsbc's tokens, so that secret scanners and people
// recognise one that leaked into a ticket or a repository.
const tokenPrefix = "ccsbc_"

// NewToken returns a new random bearer token: "ccsbc_" and 256 random
// bits, base64url. Give it to its holder and put HashToken(token) in the
// configuration.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("admin: new token: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Credentials is the Authenticator of the admin listener, built from
// admin.tokens and admin.clients. It is read-only once built: a reload
// builds a new one.
type Credentials struct {
	tokens  []credential // SHA-256 of each token
	clients []credential // SHA-256 of each client certificate
}

type credential struct {
	name string
	sum  [sha256.Size]byte
}

// NewCredentials builds the Authenticator for a validated admin section.
func NewCredentials(a *config.Admin) (*Credentials, error) {
	c := &Credentials{}
	for i, t := range a.Tokens {
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size {
			// The value may be a token pasted by mistake: never quote it.
			return nil, fmt.Errorf("admin: admin.tokens[%d] (%s): sha256 is not 64 hex digits", i, t.Name)
		}
		c.tokens = append(c.tokens, credential{name: t.Name, sum: [sha256.Size]byte(b)})
	}
	for i, cl := range a.Clients {
		b, err := config.ParseFingerprint(cl.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("admin: admin.clients[%d] (%s): %w", i, cl.Name, err)
		}
		c.clients = append(c.clients, credential{name: cl.Name, sum: [sha256.Size]byte(b)})
	}
	return c, nil
}

// Empty reports whether no credential is configured, so that nothing but
// /healthz can be reached.
func (c *Credentials) Empty() bool { return len(c.tokens) == 0 && len(c.clients) == 0 }

// Authenticate implements Authenticator: a client certificate whose
// SHA-256 is a configured client's fingerprint, or a bearer token whose
// SHA-256 is a configured token's. When a request presents both, both
// must be accepted, and the token names the identity (it is the more
// specific: a person, where a certificate is often a host).
//
// The TLS handshake proved that the client holds the private key of the
// certificate it presented, so the pin is the whole check: no chain, no
// names, as with peers pinned by fingerprint.
func (c *Credentials) Authenticate(r *http.Request) (Identity, error) {
	var id Identity
	found := false
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
		name, ok := match(c.clients, sum)
		if !ok {
			// A fingerprint is public: logging it lets the operator add
			// the client if it should be one.
			return Identity{}, fmt.Errorf("%w: client certificate %q (sha256 %x) is not an admin client", ErrUnauthenticated, r.TLS.PeerCertificates[0].Subject.String(), sum)
		}
		id, found = Identity{Name: name, Method: MethodCertificate}, true
	}
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return Identity{}, fmt.Errorf("%w: %d Authorization headers; send one", ErrUnauthenticated, len(h))
		}
		scheme, token, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
		token = strings.TrimSpace(token)
		switch {
		case !strings.EqualFold(scheme, "Bearer"):
			// Never quote the header: a client that left out the scheme
			// sent its token where the scheme belongs.
			return Identity{}, fmt.Errorf("%w: the Authorization header is not \"Bearer TOKEN\"", ErrUnauthenticated)
		case token == "":
			return Identity{}, fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
		}
		name, ok := match(c.tokens, sha256.Sum256([]byte(token)))
		if !ok {
			return Identity{}, fmt.Errorf("%w: bearer token matches no admin token", ErrUnauthenticated)
		}
		id, found = Identity{Name: name, Method: MethodToken}, true
	}
	if !found {
		return Identity{}, ErrNoCredentials
	}
	return id, nil
}

// match finds sum among creds in constant time: every entry is compared,
// whichever matches, so that timing tells nothing of which or how many.
func match(creds []credential, sum [sha256.Size]byte) (string, bool) {
	found := -1
	for i := range creds {
		if subtle.ConstantTimeCompare(creds[i].sum[:], sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return creds[found].name, true
}

// Roles is the Authorizer of the admin listener: the role of each
// configured token and client, and roleActions. It is read-only once
// built.
type Roles struct {
	roles map[Identity]Role
}

// NewRoles builds the Authorizer for a validated admin section.
func NewRoles(a *config.Admin) (*Roles, error) {
	r := &Roles{roles: map[Identity]Role{}}
	add := func(key string, id Identity, role string) error {
		if _, ok := roleActions[Role(role)]; !ok {
			return fmt.Errorf("admin: %s (%s): role %q is not one of %s", key, id.Name, role, strings.Join(config.AdminRoles, ", "))
		}
		r.roles[id] = Role(role)
		return nil
	}
	for i, t := range a.Tokens {
		if err := add(fmt.Sprintf("admin.tokens[%d]", i), Identity{Name: t.Name, Method: MethodToken}, t.Role); err != nil {
			return nil, err
		}
	}
	for i, c := range a.Clients {
		if err := add(fmt.Sprintf("admin.clients[%d]", i), Identity{Name: c.Name, Method: MethodCertificate}, c.Role); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Role returns the role of id; false for an identity it does not know.
func (r *Roles) Role(id Identity) (Role, bool) {
	role, ok := r.roles[id]
	return role, ok
}

// Authorize implements Authorizer.
func (r *Roles) Authorize(id Identity, a Action) error {
	role, ok := r.roles[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s %q has no role", ErrForbidden, id.Method, id.Name)
	case !role.Allows(a):
		return fmt.Errorf("%w: %q has role %s, which does not allow %s", ErrForbidden, id.Name, role, a)
	}
	return nil
}
