package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ccsbc/ccsbc/policy"
)

// Load reads the configuration at path and returns it decoded, defaulted
// and validated. Errors name path, the line and the key; all are reported
// at once (errors.Join). Warnings are left to the caller: see
// Config.Warnings.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a configuration already in memory; name is what
// errors call it (a file name, usually).
//
// The YAML is walked node by node rather than unmarshalled, so that every
// error carries its line and key path and unknown keys are refused with a
// suggestion. Anchors, aliases and merge keys (<<) are allowed.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "config"
	}
	d := &decoder{file: name, lines: map[string]int{}, bad: map[string]bool{}}
	c := &Config{File: name, src: name, lines: d.lines}
	if root, ok := d.document(data); ok {
		d.config(root, c)
	}
	if d.fatal {
		// Nothing usable was decoded; validating would only add noise.
		return nil, d.errs.join()
	}
	c.ApplyDefaults()
	errs := d.errs
	for _, e := range c.validate() {
		// A key that failed to decode was left zero; its "required"
		// error would only repeat the decode error.
		if !d.covered(e.Key) {
			errs = append(errs, e)
		}
	}
	if err := errs.join(); err != nil {
		return nil, err
	}
	return c, nil
}

// decoder turns a yaml.Node tree into a Config, collecting every error.
type decoder struct {
	file  string
	errs  errorList
	lines map[string]int  // key path → line, shared with the Config
	bad   map[string]bool // key paths that failed to decode
	fatal bool            // not YAML, or not a mapping at the top
	nodes int             // nodes walked, aliases expanded: see budget
	// merging holds the mappings whose merge keys are being expanded.
	merging map[*yaml.Node]bool
}

// maxNodes bounds the nodes a file may expand to. Aliases are expanded
// as they are walked, so a few lines of nested aliases ("billion laughs")
// could otherwise keep ccsbc check busy forever.
const maxNodes = 100000

// budget counts n more nodes; false once the file has expanded past
// maxNodes, which it reports once.
func (d *decoder) budget(n *yaml.Node, path string, count int) bool {
	d.nodes += count
	if d.nodes <= maxNodes {
		return true
	}
	if !d.fatal {
		d.invalid(n, path, "the file expands to more than %d values; aliases (*name) nested too deep?", maxNodes)
		d.fatal = true
	}
	return false
}

// yamlLine matches yaml.v3's syntax errors, "yaml: line 7: did not find
// expected key".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data and returns the content of its single document;
// ok is false when there is nothing to decode.
func (d *decoder) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false // empty: validation says what is required
		}
		d.syntax(err, data)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.fail(&extra, "", ErrSyntax, "a second YAML document starts here; ccsbc reads one document per file, remove the --- separator and what follows")
	case !errors.Is(err, io.EOF):
		d.syntax(err, data)
	}
	if len(doc.Content) == 0 {
		return nil, false
	}
	return doc.Content[0], true
}

func (d *decoder) syntax(err error, data []byte) {
	e := &Error{File: d.file, Msg: strings.TrimPrefix(err.Error(), "yaml: "), Err: ErrSyntax}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	switch {
	case strings.Contains(e.Msg, "cannot start any token") && bytes.ContainsRune(data, '\t'):
		e.Msg += " (indent YAML with spaces, not tabs)"
	case strings.Contains(e.Msg, "mapping values are not allowed"):
		e.Msg += " (check the indentation, or quote a value that contains \": \")"
	}
	e.Msg = "YAML syntax: " + e.Msg
	d.errs = append(d.errs, e)
	d.fatal = true
}

// fail records an error at node n (its line) and key path path.
func (d *decoder) fail(n *yaml.Node, path string, sentinel error, format string, args ...any) {
	e := &Error{File: d.file, Key: path, Msg: fmt.Sprintf(format, args...), Err: sentinel}
	if n != nil {
		e.Line = n.Line
	}
	d.errs = append(d.errs, e)
	d.bad[path] = true
}

func (d *decoder) invalid(n *yaml.Node, path, format string, args ...any) {
	d.fail(n, path, ErrInvalid, format, args...)
}

// covered reports whether key is, or lies under, a key that failed to
// decode.
func (d *decoder) covered(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if d.bad[k] {
			return true
		}
	}
	return false
}

// joinKey and indexKey build key paths: "peers", "peers[2]",
// "peers[2].transport".
func joinKey(path, key string) string {
	// A key of ours is a plain name; anything else is shown quoted, so
	// that a stray newline or space cannot garble the error.
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '<')
	}) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexKey(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parentKey strips the last element of a key path; "" at the top.
func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// field is one key of a mapping and how to decode its value.
type field struct {
	key    string
	decode func(v *yaml.Node, path string)
}

// bind is a field that stores decode's result in dst.
func bind[T any](key string, dst *T, decode func(*yaml.Node, string) T) field {
	return field{key, func(v *yaml.Node, path string) { *dst = decode(v, path) }}
}

// list decodes a YAML list with item; a malformed item still takes its
// place (as a zero value) so that indices match the key paths.
func list[T any](d *decoder, example string, item func(*yaml.Node, string) T) func(*yaml.Node, string) []T {
	return func(n *yaml.Node, path string) []T {
		var out []T
		v := resolve(n)
		if isNull(v) {
			return nil
		}
		if v.Kind != yaml.SequenceNode {
			d.invalid(n, path, "expected a list, got %s; write it as %s", describe(v), example)
			return nil
		}
		if !d.budget(n, path, len(v.Content)) {
			return nil
		}
		for i, it := range v.Content {
			p := indexKey(path, i)
			d.lines[p] = it.Line
			out = append(out, item(it, p))
		}
		return out
	}
}

type pair struct{ key, val *yaml.Node }

// mapping decodes the mapping n, whose keys are described as what ("a
// peer"), with fields; any other key is an error.
func (d *decoder) mapping(n *yaml.Node, path, what string, fields []field) {
	v := resolve(n)
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		if path == "" {
			d.invalid(n, path, "the file must be a mapping of keys (%s), got %s", keyNames(fields), describe(v))
			return
		}
		d.invalid(n, path, "expected %s, a mapping of keys (%s), got %s", what, keyNames(fields), describe(v))
		return
	}
	pairs := d.pairs(v, path)
	if !d.budget(n, path, len(pairs)) {
		return
	}
	seen := map[string]int{}
	for _, kv := range pairs {
		k := kv.key
		if k.Kind != yaml.ScalarNode {
			d.invalid(k, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		kp := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.invalid(k, kp, "set twice (first at line %d); keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		i := -1
		for j := range fields {
			if fields[j].key == k.Value {
				i = j
			}
		}
		if i < 0 {
			d.unknown(k, kp, what, fields)
			continue
		}
		d.lines[kp] = k.Line
		fields[i].decode(kv.val, kp)
	}
}

// pairs lists a mapping's key/value pairs with merge keys (<<) expanded:
// keys written in the mapping win over merged ones, and among merged
// mappings the first wins (YAML merge key semantics).
func (d *decoder) pairs(m *yaml.Node, path string) []pair {
	if !d.budget(m, path, len(m.Content)/2) {
		return nil
	}
	var own, merged []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(v, path)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, p := range own {
		have[p.key.Value] = true
	}
	out := own
	for _, p := range merged {
		if !have[p.key.Value] {
			have[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) merge(n *yaml.Node, path string) []pair {
	switch v := resolve(n); v.Kind {
	case yaml.MappingNode:
		// YAML lets an alias name the mapping that is being defined
		// (&p {<<: *p}); expanding it would never end.
		if d.merging[v] {
			d.invalid(n, joinKey(path, "<<"), "a merge (<<) refers to the mapping it is part of; merge another anchor")
			return nil
		}
		if d.merging == nil {
			d.merging = map[*yaml.Node]bool{}
		}
		d.merging[v] = true
		defer delete(d.merging, v)
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		if !d.budget(n, path, len(v.Content)) {
			return nil
		}
		for _, it := range v.Content {
			out = append(out, d.merge(it, path)...)
		}
		return out
	default:
		d.invalid(n, joinKey(path, "<<"), "a merge (<<) takes an alias to a mapping, or a list of them; got %s", describe(v))
		return nil
	}
}

func (d *decoder) unknown(k *yaml.Node, path, what string, fields []field) {
	best, bestDist := "", 3 // suggest only close misspellings
	for _, f := range fields {
		if dist := editDistance(strings.ToLower(k.Value), f.key); dist < bestDist {
			best, bestDist = f.key, dist
		}
	}
	if best != "" {
		d.fail(k, path, ErrUnknownKey, "unknown key; did you mean %q? The keys of %s are: %s", best, what, keyNames(fields))
		return
	}
	d.fail(k, path, ErrUnknownKey, "unknown key; the keys of %s are: %s", what, keyNames(fields))
}

func keyNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	return strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b, for "did you
// mean" suggestions.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// The config's structure, one method per YAML mapping. The field lists
// are the schema: keep them in the order of the struct fields in
// config.go (TestDecodeCoversSchema checks that none is missing).

func (d *decoder) config(n *yaml.Node, c *Config) {
	d.mapping(n, "", "the top level", []field{
		bind("model", &c.Model, d.model),
		bind("log", &c.Log, d.log),
		bind("listeners", &c.Listeners, list(d, "- {transport: tls, address: 127.0.0.1:5061}", d.listener)),
		bind("tls", &c.TLS, d.tls),
		{"media", func(v *yaml.Node, p string) { d.media(v, p, c) }},
		bind("peers", &c.Peers, list(d, "- {name: cucm, address: 127.0.0.1:5081}", d.peer)),
		bind("routes", &c.Routes, list(d, "- {user: 1xxx, to: cucm, leg: agent}", d.route)),
		{"session_timers", func(v *yaml.Node, p string) { d.sessionTimers(v, p, c) }},
		{"audit", func(v *yaml.Node, p string) { d.audit(v, p, c) }},
		{"admin", func(v *yaml.Node, p string) { d.admin(v, p, c) }},
	})
	if v := resolve(n); v.Kind != yaml.MappingNode && !isNull(v) {
		d.fatal = true
	}
}

func (d *decoder) log(n *yaml.Node, path string) Log {
	var l Log
	d.mapping(n, path, "log", []field{
		bind("level", &l.Level, d.str),
	})
	return l
}

func (d *decoder) listener(n *yaml.Node, path string) Listener {
	l := Listener{Line: n.Line}
	d.mapping(n, path, "a listener", []field{
		bind("transport", &l.Transport, d.transport),
		bind("address", &l.Address, d.addrPort),
		bind("allow", &l.Allow, list(d, "[127.0.0.0/8, 192.0.2.10]", d.prefix)),
	})
	return l
}

func (d *decoder) tls(n *yaml.Node, path string) TLS {
	var t TLS
	d.mapping(n, path, "tls", []field{
		bind("certificate", &t.Certificate, d.str),
		bind("key", &t.Key, d.str),
		bind("ca_bundle", &t.CABundle, d.str),
		bind("min_version", &t.MinVersion, d.str),
		bind("client_auth", &t.ClientAuth, d.str),
		bind("state_dir", &t.StateDir, d.str),
		bind("handshake_timeout", &t.HandshakeTimeout, d.duration),
	})
	return t
}

func (d *decoder) media(n *yaml.Node, path string, c *Config) {
	m := &c.Media
	d.mapping(n, path, "media", []field{
		bind("bind", &m.Bind, d.addr),
		bind("advertise", &m.Advertise, d.addr),
		{"ports", func(v *yaml.Node, p string) { m.PortMin, m.PortMax = d.portRange(v, p) }},
		{"inactivity_timeout", func(v *yaml.Node, p string) {
			m.InactivityTimeout = d.duration(v, p)
			c.inactivitySet = !isNull(resolve(v))
		}},
		bind("latching", &m.Latching, d.boolean),
		bind("extra_addresses", &m.ExtraAddresses, list(d, "- {bind: 192.0.2.11, advertise: 203.0.113.11}", d.mediaAddress)),
	})
}

func (d *decoder) mediaAddress(n *yaml.Node, path string) MediaAddress {
	var a MediaAddress
	d.mapping(n, path, "a media address", []field{
		bind("bind", &a.Bind, d.addr),
		bind("advertise", &a.Advertise, d.addr),
	})
	return a
}

func (d *decoder) peer(n *yaml.Node, path string) Peer {
	p := Peer{Line: n.Line}
	d.mapping(n, path, "a peer", []field{
		bind("name", &p.Name, d.str),
		bind("kind", &p.Kind, d.str),
		bind("address", &p.Address, d.addrPort),
		bind("transport", &p.Transport, d.transport),
		bind("verify", &p.Verify, d.str),
		bind("fingerprint", &p.Fingerprint, d.str),
		bind("server_name", &p.ServerName, d.str),
		bind("srtp", &p.SRTP, d.boolean),
		bind("keepalive", &p.Keepalive, d.duration),
		bind("down_after", &p.DownAfter, d.integer),
		bind("srtp_suites", &p.SRTPSuites, list(d, "[AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32]", d.str)),
		bind("srtp_keying", &p.SRTPKeying, d.str),
		bind("codecs", &p.Codecs, list(d, "[PCMU, telephone-event]", d.str)),
	})
	return p
}

func (d *decoder) route(n *yaml.Node, path string) Route {
	r := Route{Line: n.Line}
	d.mapping(n, path, "a route", []field{
		bind("name", &r.Name, d.str),
		bind("from", &r.From, list(d, "[cvp, dialer]", d.str)),
		bind("user", &r.User, d.str),
		bind("to", &r.To, d.str),
		bind("failover", &r.Failover, list(d, "[cucm-sub2]", d.str)),
		bind("leg", &r.Leg, d.legClass),
	})
	return r
}

func (d *decoder) sessionTimers(n *yaml.Node, path string, c *Config) {
	st := &c.SessionTimers
	d.mapping(n, path, "session_timers", []field{
		{"enabled", func(v *yaml.Node, p string) {
			st.Enabled = d.boolean(v, p)
			c.timersEnabledSet = !isNull(resolve(v))
		}},
		bind("session_expires", &st.SessionExpires, d.duration),
		bind("min_se", &st.MinSE, d.duration),
	})
}

func (d *decoder) audit(n *yaml.Node, path string, c *Config) {
	a := &c.Audit
	d.mapping(n, path, "audit", []field{
		bind("mask_numbers", &a.MaskNumbers, d.boolean),
		{"keep_digits", func(v *yaml.Node, p string) {
			a.KeepDigits = d.integer(v, p)
			c.keepDigitsSet = !isNull(resolve(v))
		}},
	})
}

func (d *decoder) admin(n *yaml.Node, path string, c *Config) {
	a := &c.Admin
	d.mapping(n, path, "admin", []field{
		{"listen", func(v *yaml.Node, p string) {
			a.Listen, c.adminListenSet = d.adminListen(v, p)
		}},
		bind("tls", &a.TLS, d.boolean),
		bind("tokens", &a.Tokens, list(d, "- {name: grafana, sha256: <from ccsbc admin hash-token>, role: read}", d.adminToken)),
		bind("clients", &a.Clients, list(d, "- {name: nms, fingerprint: <sha256 of its certificate>, role: read}", d.adminClient)),
	})
}

// adminListen decodes admin.listen: an IP:port, or "" for disabled. set
// is false when the key is null, which leaves the default.
func (d *decoder) adminListen(n *yaml.Node, path string) (ap netip.AddrPort, set bool) {
	v := resolve(n)
	switch {
	case isNull(v):
		return netip.AddrPort{}, false
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == "":
		return netip.AddrPort{}, true
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool":
		d.invalid(n, path, "%q is not an IP:port; write \"\" to disable the admin listener, or an address such as 127.0.0.1:9060", v.Value)
		return netip.AddrPort{}, true
	}
	return d.addrPort(n, path), true
}

func (d *decoder) adminToken(n *yaml.Node, path string) AdminToken {
	t := AdminToken{Line: n.Line}
	d.mapping(n, path, "an admin token", []field{
		bind("name", &t.Name, d.str),
		bind("sha256", &t.SHA256, d.str),
		bind("role", &t.Role, d.str),
	})
	return t
}

func (d *decoder) adminClient(n *yaml.Node, path string) AdminClient {
	c := AdminClient{Line: n.Line}
	d.mapping(n, path, "an admin client", []field{
		bind("name", &c.Name, d.str),
		bind("fingerprint", &c.Fingerprint, d.str),
		bind("role", &c.Role, d.str),
	})
	return c
}

// Scalars. Each returns the zero value for null (an unset key) and for a
// value it reports as an error.

// scalar returns the text of a scalar node; ok is false for null and for
// a mapping or list, which it reports.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	v := resolve(n)
	if isNull(v) {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		d.invalid(n, path, "expected %s, got %s", want, describe(v))
		return "", false
	}
	return v.Value, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalar(n, path, "a string")
	return s
}

func (d *decoder) integer(n *yaml.Node, path string) int {
	s, ok := d.scalar(n, path, "a whole number")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil || resolve(n).ShortTag() != "!!int" {
		d.invalid(n, path, "%q is not a whole number", s)
		return 0
	}
	return v
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false
	}
	if resolve(n).ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	d.invalid(n, path, "%q is not a boolean; write true or false", s)
	return false
}

func (d *decoder) model(n *yaml.Node, path string) policy.Model {
	s, ok := d.scalar(n, path, "a model number")
	if !ok {
		return 0
	}
	m, err := strconv.Atoi(s)
	if err != nil {
		d.invalid(n, path, "%q is not a model number; use %s", s, modelChoices())
		return 0
	}
	return policy.Model(m) // range checked by Validate
}

func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	s, ok := d.scalar(n, path, "a duration such as 30s")
	if !ok {
		return 0
	}
	if s == "0" {
		return 0
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		d.invalid(n, path, "%s has no unit; write %ss (or ms, m, h)", s, s)
		return 0
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		d.invalid(n, path, "%q is not a duration; write it like 30s, 500ms or 2m", s)
		return 0
	}
	return t
}

func (d *decoder) addrPort(n *yaml.Node, path string) netip.AddrPort {
	s, ok := d.scalar(n, path, "an IP:port such as 127.0.0.1:5060")
	if !ok {
		return netip.AddrPort{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap
	}
	if a, err := netip.ParseAddr(s); err == nil {
		d.invalid(n, path, "%q has no port; write it with one, e.g. %s", s, netip.AddrPortFrom(a, 5060))
	} else if host, port, err := net.SplitHostPort(s); err == nil && host != "" {
		if _, err := netip.ParseAddr(host); err == nil {
			d.invalid(n, path, "%q: %q is not a port; write a number from 1 to 65535", s, port)
		} else {
			d.invalid(n, path, "%q names a host; ccsbc does not resolve names in its configuration, write an IP address, e.g. 127.0.0.1:%s", s, port)
		}
	} else {
		d.invalid(n, path, "%q is not an IP:port; write it like 127.0.0.1:5060 or [::1]:5060", s)
	}
	return netip.AddrPort{}
}

func (d *decoder) addr(n *yaml.Node, path string) netip.Addr {
	s, ok := d.scalar(n, path, "an IP address such as 127.0.0.1")
	if !ok {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		d.invalid(n, path, "%q has a port; write the address alone (%s), ports go in media.ports", s, ap.Addr())
	} else {
		d.invalid(n, path, "%q is not an IP address; write it like 192.0.2.10 or 2001:db8::10 (names are not resolved)", s)
	}
	return netip.Addr{}
}

// prefix accepts CIDR notation or a bare address (one host).
func (d *decoder) prefix(n *yaml.Node, path string) netip.Prefix {
	s, ok := d.scalar(n, path, "a CIDR prefix such as 10.0.0.0/8")
	if !ok {
		return netip.Prefix{}
	}
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return netip.PrefixFrom(a, a.BitLen())
		}
	} else if p, err := netip.ParsePrefix(s); err == nil {
		if p != p.Masked() {
			// 10.1.2.3/8 is ambiguous: a typo for one host, or for the
			// network? An allow list must say which.
			d.invalid(n, path, "%q has host bits set; write %s for the network or %s for the host", s, p.Masked(), p.Addr())
			return netip.Prefix{}
		}
		return p
	}
	d.invalid(n, path, "%q is not a CIDR prefix; write it like 10.0.0.0/8, or an address alone for one host", s)
	return netip.Prefix{}
}

func (d *decoder) transport(n *yaml.Node, path string) policy.Transport {
	s, ok := d.scalar(n, path, "udp, tcp or tls")
	if !ok {
		return ""
	}
	t, err := policy.ParseTransport(s)
	if err != nil {
		d.invalid(n, path, "%q is not one of %s", s, transportChoices())
		return ""
	}
	return t
}

func (d *decoder) legClass(n *yaml.Node, path string) policy.LegClass {
	s, ok := d.scalar(n, path, "a leg class")
	if !ok {
		return ""
	}
	c, err := policy.ParseLegClass(s)
	if err != nil {
		d.invalid(n, path, "%q is not a leg class; use one of %s", s, legChoices())
		return ""
	}
	return c
}

// portRange decodes "lo-hi"; Validate checks the range itself.
func (d *decoder) portRange(n *yaml.Node, path string) (lo, hi int) {
	s, ok := d.scalar(n, path, "a port range such as 40000-40999")
	if !ok {
		return 0, 0
	}
	a, b, found := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !found || err1 != nil || err2 != nil {
		d.invalid(n, path, "%q is not a port range; write lo-hi, e.g. 40000-40999", s)
		return 0, 0
	}
	return lo, hi
}

func transportChoices() string {
	names := make([]string, len(policy.Transports))
	for i, t := range policy.Transports {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func legChoices() string {
	names := make([]string, len(policy.LegClasses))
	for i, c := range policy.LegClasses {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// modelChoices is "1 (unsecured), 2 (secured signaling), ... or 4 (...)".
func modelChoices() string {
	var b strings.Builder
	for m := policy.ModelUnsecured; m <= policy.ModelEndToEnd; m++ {
		switch {
		case m == policy.ModelEndToEnd:
			b.WriteString(" or ")
		case m > policy.ModelUnsecured:
			b.WriteString(", ")
		}
		b.WriteString(strings.TrimPrefix(m.String(), "model "))
	}
	return b.String()
}
