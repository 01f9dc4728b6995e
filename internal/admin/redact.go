package admin

import (
	"bytes"
	"encoding"
	"encoding/json"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Redacted is what /api/config shows instead of a secret string.
const Redacted = "[redacted]"

// secretWords mark a YAML key as secret: a string under a key containing
// one of them (case-insensitively), at any depth, is replaced by Redacted.
var secretWords = []string{"secret", "password", "token"}

// redacted converts v (a config struct, or a pointer to one) into a value
// that encoding/json writes as the YAML file would read:
//
//   - keys are the yaml tag names, in field order; fields tagged "-" and
//     unexported fields are left out; an untagged field is its lower-cased
//     name, as go.yaml.in/yaml does; ",inline" structs are flattened;
//   - time.Duration is its String ("30s");
//   - a string under a secret key (see secretWords), including the
//     elements of a list or map there, is Redacted unless empty;
//   - any other string that is a URL with a password has the password
//     replaced (url.URL.Redacted); a string that looks like a URL with
//     user info but does not parse is Redacted whole;
//   - nil slices are [], nil maps {}, nil pointers null.
//
// The walk is generic so that keys added to config later are covered.
func redacted(v any) any {
	return redactValue(reflect.ValueOf(v), false)
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func redactValue(v reflect.Value, secret bool) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return redactValue(v.Elem(), secret)
	case reflect.Struct:
		if v.Type().Implements(textMarshalerType) {
			return redactText(v, secret)
		}
		o := object{}
		redactFields(v, secret, &o)
		return o
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			if secret && v.Len() > 0 {
				return Redacted
			}
			return string(v.Bytes())
		}
		a := make([]any, v.Len())
		for i := range a {
			a[i] = redactValue(v.Index(i), secret)
		}
		return a
	case reflect.Map:
		o := object{}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return mapKey(keys[i]) < mapKey(keys[j]) })
		for _, k := range keys {
			name := mapKey(k)
			o = append(o, member{name, redactValue(v.MapIndex(k), secret || isSecretKey(name))})
		}
		return o
	case reflect.String:
		return redactString(v.String(), secret)
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	if v.Type().Implements(textMarshalerType) {
		return redactText(v, secret)
	}
	return nil // channels, funcs: not configuration
}

// redactFields appends the fields of struct v to o, flattening inline
// structs.
func redactFields(v reflect.Value, secret bool, o *object) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if hasOption(opts, "inline") {
			fv := v.Field(i)
			for fv.Kind() == reflect.Pointer && !fv.IsNil() {
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				redactFields(fv, secret, o)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		*o = append(*o, member{name, redactValue(v.Field(i), secret || isSecretKey(name))})
	}
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

func redactText(v reflect.Value, secret bool) any {
	tm, ok := v.Interface().(encoding.TextMarshaler)
	if !ok {
		return nil
	}
	b, err := tm.MarshalText()
	if err != nil {
		return nil
	}
	return redactString(string(b), secret)
}

func isSecretKey(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	b, _ := json.Marshal(redactValue(k, false))
	return strings.Trim(string(b), `"`)
}

func redactString(s string, secret bool) string {
	if s == "" {
		return s
	}
	if secret {
		return Redacted
	}
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Redacted // could hide a password we cannot find
	}
	return u.Redacted()
}

// object is a JSON object that keeps its keys in order.
type object []member

type member struct {
	key   string
	value any
}

// MarshalJSON writes o's members in order; an empty object is {}.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		val, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
