package config

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/connx/connx/internal/route"
)

// Load reads the file at path and returns [Parse] of its contents, with
// path as the file name in errors. A read failure is returned unchanged
// (an *fs.PathError), so errors.Is(err, fs.ErrNotExist) works.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse decodes a YAML document over [Default] and validates the result.
// Keys that are present override defaults; absent keys, and keys whose
// value is null, keep them, except that an unset rateLimit.burst is twice
// rateLimit.requestsPerSec, as in the seed, and an unset
// healthCheck.timeout is at most healthCheck.interval. The sections of a
// pool, and a route's timeouts and rateLimit, start from the top-level
// ones once the whole file is read (see [Pool] and [Route]). filename is
// used only in error messages.
//
// On failure Parse returns a nil *Config and an errors.Join of one *Error
// per problem, in file order: YAML syntax, unknown or duplicate keys,
// values of the wrong type and everything [Config.Validate] checks. Parse
// does no network I/O (no DNS lookups).
func Parse(data []byte, filename string) (*Config, error) {
	root, err := parseDocument(data, filename)
	if err != nil {
		return nil, joinErrors([]*Error{err})
	}
	d := &decoder{file: filename, pos: map[string]position{}, set: map[string]bool{}, bad: map[string]bool{}}
	c := Default()
	d.walk(root, "", position{root.Line, root.Column}, reflect.ValueOf(c).Elem())
	if !d.set["rateLimit.burst"] {
		c.RateLimit.Burst = defaultBurst(c.RateLimit.RequestsPerSec)
	}
	if h := &c.HealthCheck; !d.set["healthCheck.timeout"] && h.Interval > 0 {
		h.Timeout = min(h.Timeout, h.Interval) // interval: 2 alone means a 2s timeout
	}
	d.inherit(c)

	v := &validator{file: filename, pos: d.pos, bad: d.bad}
	c.validate(v)
	if errs := append(d.errs, v.errs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// defaultBurst is the burst used when rateLimit.burst is not set: twice
// the rate, as in the seed (200 for the default 100 requests/s).
func defaultBurst(rps float64) int {
	b := math.Ceil(2 * rps)
	switch {
	case !(b >= 1): // also NaN; validation reports the rate
		return 1
	case b > math.MaxInt32:
		return math.MaxInt32
	}
	return int(b)
}

// parseDocument returns the top-level mapping of the only document in
// data.
func parseDocument(data []byte, filename string) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &Error{File: filename, Msg: "empty configuration: at least a backends list is required"}
		}
		return nil, syntaxError(filename, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, syntaxError(filename, data, err)
		}
		return nil, &Error{File: filename, Line: extra.Line, Column: extra.Column,
			Msg: "more than one YAML document; a configuration file holds exactly one"}
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) || root.Kind == yaml.DocumentNode {
		return nil, &Error{File: filename, Msg: "empty configuration: at least a backends list is required"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: filename, Line: root.Line, Column: root.Column,
			Msg: "the top level must be a mapping (server:, backends:, ...), got " + describe(root)}
	}
	return root, nil
}

// yamlLine matches the location prefix of the yaml package's errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError converts an error from the yaml package to an *Error,
// keeping its line number. An error caused by a tab in a line's
// indentation says so and points at the tab: the yaml package's own
// message for it ("found character that cannot start any token") does
// not.
func syntaxError(filename string, data []byte, err error) *Error {
	msg := err.Error()
	e := &Error{File: filename}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if e.Line > 0 && (strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token")) {
		if at, ok := indentTab(data, e.Line); ok {
			e.Line, e.Column = at.line, at.column
			e.Msg = "invalid YAML: a tab in the indentation (YAML does not allow tabs for indentation; indent with spaces)"
			return e
		}
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// indentTab finds a tab in the indentation of line, or of the line after
// or before it (the yaml package's line for a tab error can be one off),
// and returns its position.
func indentTab(data []byte, line int) (position, bool) {
	lines := bytes.Split(data, []byte("\n"))
	for _, l := range []int{line, line + 1, line - 1} {
		if l < 1 || l > len(lines) {
			continue
		}
		text := lines[l-1]
		indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
		if i := bytes.IndexByte(indent, '\t'); i >= 0 {
			return position{l, i + 1}, true
		}
	}
	return position{}, false
}

// position is a 1-based line and column in the file.
type position struct{ line, column int }

// decoder walks a YAML node tree against the Config struct, using the
// fields' yaml tags as the schema. It never stops at the first error.
type decoder struct {
	file string
	errs []*Error
	// pos records where each key path that is present was written.
	pos map[string]position
	// set holds the key paths that are present with a non-null value.
	set map[string]bool
	// bad holds the key paths whose value could not be decoded, so
	// validation does not report them a second time.
	bad map[string]bool
}

// Types decoded by a method of their own rather than by their kind.
var (
	durationType      = reflect.TypeFor[time.Duration]()
	poolsType         = reflect.TypeFor[[]Pool]()
	headersType       = reflect.TypeFor[[]Header]()
	headerMatchesType = reflect.TypeFor[[]route.HeaderMatch]()
)

func (d *decoder) fail(at position, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: at.line, Column: at.column, Key: key, Msg: fmt.Sprintf(format, args...)})
	d.bad[key] = true
}

// walk decodes n into v. key is n's key path and at the position to blame
// in errors. A null n is handled by the caller.
func (d *decoder) walk(n *yaml.Node, key string, at position, v reflect.Value) {
	n = resolve(n)
	switch v.Type() {
	case durationType:
		d.duration(n, key, at, v)
		return
	case poolsType:
		d.pools(n, key, at, v)
		return
	case headersType:
		d.headers(n, key, at, v)
		return
	case headerMatchesType:
		d.headerMatches(n, key, at, v)
		return
	}
	switch v.Kind() {
	case reflect.Pointer: // an optional section: present means set
		if v.IsNil() {
			v.Set(newSection(v.Type().Elem()))
		}
		d.walk(n, key, at, v.Elem())
	case reflect.Struct:
		d.mapping(n, key, at, v)
	case reflect.Slice:
		d.sequence(n, key, at, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(at, key, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.fail(at, key, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		i, ok := integer(n)
		if !ok || v.OverflowInt(i) {
			d.fail(at, key, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Int64: // sizes; durations are handled above
		d.size(n, key, at, v)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.fail(at, key, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		panic("config: unsupported field type " + v.Type().String())
	}
}

// mapping decodes a YAML mapping into the struct v. Merge keys ("<<") are
// applied first, so that the mapping's own keys override them.
func (d *decoder) mapping(n *yaml.Node, key string, at position, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(at, key, "expected a mapping, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.ShortTag() == "!!merge" {
			d.merge(n.Content[i+1], key, position{k.Line, k.Column}, v)
		}
	}
	names := fieldNames(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], resolve(n.Content[i+1])
		kat := position{k.Line, k.Column}
		if k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(kat, key, "expected a key name, got %s", describe(k))
			continue
		}
		child := joinKey(key, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(kat, child, "duplicate key (first set at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		field, ok := names[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, schemaKeys(v.Type())); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(kat, child, "%s", msg)
			continue
		}
		d.pos[child] = kat
		if isNull(val) {
			continue
		}
		d.set[child] = true
		d.walk(val, child, kat, v.Field(field))
	}
}

// merge applies the value of a "<<" key: a mapping, or a sequence of
// mappings in which earlier ones take precedence.
func (d *decoder) merge(n *yaml.Node, key string, at position, v reflect.Value) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping(n, key, at, v)
	case yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			d.mapping(resolve(n.Content[i]), key, at, v)
		}
	default:
		d.fail(at, key, "merge key value must be a mapping or a sequence of mappings, got %s", describe(n))
	}
}

// sequence decodes a list: of strings, of backends, or of mappings such
// as routes. Every item yields one element, even an invalid one, so that
// indexes in error messages match the file.
func (d *decoder) sequence(n *yaml.Node, key string, at position, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(at, key, "expected a list, got %s", describe(n))
		return
	}
	if v.Type().Elem().Kind() == reflect.String {
		d.strings(n, key, v)
		return
	}
	list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		child := fmt.Sprintf("%s[%d]", key, i)
		iat := position{item.Line, item.Column}
		d.pos[child] = iat
		if b, ok := list.Index(i).Addr().Interface().(*Backend); ok {
			d.backend(item, child, iat, b)
			continue
		}
		if item.Kind != yaml.MappingNode {
			d.fail(iat, child, "expected a mapping, got %s", describe(item))
			continue
		}
		d.mapping(item, child, iat, list.Index(i))
	}
	v.Set(list)
}

// backend decodes one item of a backends list: a mapping (url, weight)
// or, as in the seed's first format, a URL string with weight 1.
func (d *decoder) backend(item *yaml.Node, key string, at position, b *Backend) {
	b.Weight = 1
	switch {
	case item.Kind == yaml.MappingNode:
		d.mapping(item, key, at, reflect.ValueOf(b).Elem())
	case item.Kind == yaml.ScalarNode && item.ShortTag() == "!!str":
		// The seed's first format: a plain list of URLs.
		b.URL = item.Value
		d.pos[key+".url"] = at
	default:
		d.fail(at, key, "expected a URL string or a mapping with a url key, got %s", describe(item))
	}
}

// strings decodes a list of strings, such as rateLimit.exempt.
func (d *decoder) strings(n *yaml.Node, key string, v reflect.Value) {
	list := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		child := fmt.Sprintf("%s[%d]", key, i)
		iat := position{item.Line, item.Column}
		d.pos[child] = iat
		if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" {
			d.fail(iat, child, "expected a string, got %s", describe(item))
			continue
		}
		list = append(list, item.Value)
	}
	v.Set(reflect.ValueOf(list).Convert(v.Type()))
}

// duration decodes a number of seconds or a Go duration string.
func (d *decoder) duration(n *yaml.Node, key string, at position, v reflect.Value) {
	const want = `expected a duration: seconds (e.g. 30 or 0.5) or a string like "500ms", "10s", "1m"`
	if n.Kind != yaml.ScalarNode {
		d.fail(at, key, "%s, got %s", want, describe(n))
		return
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var sec float64
		if err := n.Decode(&sec); err != nil {
			d.fail(at, key, "%s, got %s", want, describe(n))
			return
		}
		dur, err := parseSeconds(sec)
		if err != nil {
			d.fail(at, key, "%v, got %s", err, describe(n))
			return
		}
		v.SetInt(int64(dur))
	case "!!str":
		dur, err := time.ParseDuration(strings.TrimSpace(n.Value))
		if err != nil {
			d.fail(at, key, "%s, got %s", want, describe(n))
			return
		}
		v.SetInt(int64(dur))
	default:
		d.fail(at, key, "%s, got %s", want, describe(n))
	}
}

// size decodes an integer number of bytes or a string with a unit.
func (d *decoder) size(n *yaml.Node, key string, at position, v reflect.Value) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		size, err := parseSize(n.Value)
		if err != nil {
			d.fail(at, key, "%v, got %s", err, describe(n))
			return
		}
		v.SetInt(size)
		return
	}
	i, ok := integer(n)
	if !ok {
		d.fail(at, key, "%v, got %s", errSizeSyntax, describe(n))
		return
	}
	v.SetInt(i)
}

// integer returns the value of an integer scalar. A float with no
// fractional part, such as 1e3, is accepted.
func integer(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if n.Decode(&i) != nil {
			return 0, false
		}
		return i, true
	case "!!float":
		var f float64
		if n.Decode(&f) != nil || f != math.Trunc(f) || f >= math.MaxInt64 || f < math.MinInt64 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe renders a node for "got ..." in error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		if isNull(n) {
			return "null"
		}
		return n.Value
	}
	return "nothing"
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// fieldNames maps the yaml key of each field of struct type t to the
// field's index. Fields tagged "-" are not part of the schema.
func fieldNames(t reflect.Type) map[string]int {
	names := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			names[name] = i
		}
	}
	return names
}

// schemaKeys lists the yaml keys of struct type t in declaration order.
func schemaKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// newSection returns a pointer to a new value of t, an optional section
// that a file has just given, holding the defaults it has in YAML.
func newSection(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	switch s := p.Interface().(type) {
	case *Redirect:
		s.Code = 302
	case *Respond:
		s.Status = 200
	case *DNSDiscovery:
		*s = *NewDNSDiscovery("")
	case *TLS:
		*s = *DefaultTLS()
	case *ClientAuth:
		*s = ClientAuth{Mode: "require", SubjectHeader: "X-Client-Subject"}
	}
	return p
}

// pools decodes the pools mapping, name -> pool, into a []Pool in file
// order.
func (d *decoder) pools(n *yaml.Node, key string, at position, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(at, key, "expected a mapping from pool names to pools, got %s", describe(n))
		return
	}
	pools := make([]Pool, 0, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], resolve(n.Content[i+1])
		kat := position{k.Line, k.Column}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.fail(kat, key, "expected a pool name, got %s", describe(k))
			continue
		}
		child := joinKey(key, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(kat, child, "duplicate key (first set at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		d.pos[child] = kat
		p := Pool{Name: k.Value}
		if !isNull(val) {
			d.mapping(val, child, kat, reflect.ValueOf(&p).Elem())
		}
		if at, ok := d.pos[child+".name"]; ok {
			d.fail(at, child+".name", "cannot be set: a pool's name is its key in pools")
			p.Name = k.Value
		}
		pools = append(pools, p)
	}
	v.Set(reflect.ValueOf(pools))
}

// headers decodes header fields to set: a mapping from name to value, in
// order, or a list of {name, value} mappings. Entry j is keyed key[j],
// with key[j].name at the name and key[j].value at the value.
func (d *decoder) headers(n *yaml.Node, key string, at position, v reflect.Value) {
	switch n.Kind {
	case yaml.SequenceNode:
		d.sequence(n, key, at, v)
		return
	case yaml.MappingNode:
	default:
		d.fail(at, key, "expected a mapping from header names to values, or a list of {name, value}, got %s", describe(n))
		return
	}
	list := make([]Header, 0, len(n.Content)/2)
	d.entries(n, key, func(child string, kat position, k, val *yaml.Node) {
		h := Header{Name: k.Value}
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.fail(kat, child+".value", "expected a value (\"\" for an empty one), got %s", describe(val))
		} else {
			h.Value = val.Value
		}
		list = append(list, h)
	})
	v.Set(reflect.ValueOf(list))
}

// headerMatches decodes match.headers: a mapping from a header name to
// the exact value to match, or to true or nothing for "present".
func (d *decoder) headerMatches(n *yaml.Node, key string, at position, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(at, key, "expected a mapping from header names to values (or true for \"present\"), got %s", describe(n))
		return
	}
	list := make([]route.HeaderMatch, 0, len(n.Content)/2)
	d.entries(n, key, func(child string, kat position, k, val *yaml.Node) {
		m := route.HeaderMatch{Name: k.Value}
		var b bool
		switch {
		case isNull(val):
			m.Present = true
		case val.Kind == yaml.ScalarNode && val.ShortTag() == "!!bool" && val.Decode(&b) == nil && b:
			m.Present = true
		case val.Kind == yaml.ScalarNode && val.ShortTag() != "!!bool":
			m.Value = val.Value
		default:
			d.fail(kat, child+".value", "expected a value to match, or true for \"present\", got %s", describe(val))
		}
		list = append(list, m)
	})
	v.Set(reflect.ValueOf(list))
}

// entries calls add for each entry of the mapping n whose key is a name,
// in order, with the key path key[j] of the j-th such entry; it records
// the name's position for key[j], key[j].name and key[j].value, and
// reports keys that are not names or repeat.
func (d *decoder) entries(n *yaml.Node, key string, add func(child string, kat position, k, val *yaml.Node)) {
	seen := map[string]int{}
	j := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], resolve(n.Content[i+1])
		kat := position{k.Line, k.Column}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" || isNull(k) {
			d.fail(kat, key, "expected a header name, got %s", describe(k))
			continue
		}
		child := fmt.Sprintf("%s[%d]", key, j)
		if line, dup := seen[k.Value]; dup {
			d.fail(kat, key, "duplicate key %q (first set at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		d.pos[child] = kat
		d.pos[child+".name"] = kat
		d.pos[child+".value"] = kat // errors point at keys
		add(child, kat, k, val)
		j++
	}
}

// inherit fills in, once the whole file is decoded, what pools and
// routes did not set: a pool's sections and a route's timeouts from the
// top-level sections, and a route's rateLimit from the top-level one.
func (d *decoder) inherit(c *Config) {
	d.inheritBackends("backends", c.Backends, &c.BackendTLS)
	for i := range c.Pools {
		p := &c.Pools[i]
		key := "pools." + p.Name
		d.fill(key+".loadBalancing", &p.LoadBalancing, &c.LoadBalancing)
		d.fill(key+".healthCheck", &p.HealthCheck, &c.HealthCheck)
		d.fill(key+".circuitBreaker", &p.CircuitBreaker, &c.CircuitBreaker)
		d.fill(key+".outlierDetection", &p.Outlier, &c.Outlier)
		d.fill(key+".upstream", &p.Upstream, &c.Upstream)
		d.fill(key+".tls", &p.TLS, &c.BackendTLS)
		if h := &p.HealthCheck; d.set[key+".healthCheck.interval"] && !d.set[key+".healthCheck.timeout"] && h.Interval > 0 {
			h.Timeout = min(c.HealthCheck.Timeout, h.Interval)
		}
		d.inheritBackends(key+".backends", p.Backends, &p.TLS)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		key := "routes[" + strconv.Itoa(i) + "]"
		d.fill(key+".timeouts", &r.Timeouts, &c.Timeouts)
		if rl := r.RateLimit; rl != nil {
			key += ".rateLimit"
			d.fill(key, rl, &c.RateLimit)
			if d.set[key+".redis"] { // the keys it does not set
				d.fill(key+".redis", &rl.Redis, &c.RateLimit.Redis)
			}
			if !d.set[key+".enabled"] {
				rl.Enabled = true
			}
			if !d.set[key+".burst"] && d.set[key+".requestsPerSec"] {
				rl.Burst = defaultBurst(rl.RequestsPerSec)
			}
		}
	}
}

// inheritBackends fills the keys a backend's own tls section does not
// set from its pool's (already complete) tls section.
func (d *decoder) inheritBackends(key string, list []Backend, pool *BackendTLS) {
	for i := range list {
		if b := &list[i]; b.TLS != nil {
			d.fill(key+"["+strconv.Itoa(i)+"].tls", b.TLS, pool)
		}
	}
}

// fill copies each field of the struct *src whose key under key the file
// did not set to the same field of *dst. Slices are copied.
func (d *decoder) fill(key string, dst, src any) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range dv.NumField() {
		name := yamlName(dv.Type().Field(i))
		if name == "" || d.set[key+"."+name] {
			continue
		}
		f := sv.Field(i)
		if f.Kind() == reflect.Slice && !f.IsNil() {
			f = reflect.AppendSlice(reflect.MakeSlice(f.Type(), 0, f.Len()), f)
		}
		dv.Field(i).Set(f)
	}
}
