package route

import (
	"errors"
	"strings"
	"testing"
)

// compileErrors returns every *CompileError in err.
func compileErrors(t *testing.T, err error) []*CompileError {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Compile error %v is not a joined error", err)
	}
	var out []*CompileError
	for _, e := range joined.Unwrap() {
		var ce *CompileError
		if !errors.As(e, &ce) {
			t.Fatalf("Compile error %v is not a *CompileError", e)
		}
		out = append(out, ce)
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	ok := Match{Host: "ok.example.com"}
	tests := []struct {
		name    string
		routes  []Route
		route   int    // index of the bad route
		key     string // CompileError.Key
		earlier int
		msg     string // part of the message
	}{
		{name: "duplicate name", routes: []Route{{Name: "api", Match: ok}, {Name: "web", Match: Match{Path: "/w"}}, {Name: "api", Match: Match{Path: "/a"}}},
			route: 2, key: "name", earlier: 0, msg: `"api" is already used by routes[0]`},

		{name: "wildcard alone", routes: routesOf(Match{Host: "*"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "wildcard dot", routes: routesOf(Match{Host: "*."}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "wildcard inside", routes: routesOf(Match{Host: "a.*.com"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "wildcard glued", routes: routesOf(Match{Host: "*example.com"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "wildcard twice", routes: routesOf(Match{Host: "*.*.example.com"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "wildcard last", routes: routesOf(Match{Host: "example.*"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "double star", routes: routesOf(Match{Host: "**.example.com"}), key: "match.host", earlier: -1, msg: "wildcard"},
		{name: "empty label", routes: routesOf(Match{Host: "a..com"}), key: "match.host", earlier: -1, msg: "empty label"},
		{name: "leading dot", routes: routesOf(Match{Host: ".example.com"}), key: "match.host", earlier: -1, msg: "empty label"},
		{name: "only a dot", routes: routesOf(Match{Host: "."}), key: "match.host", earlier: -1, msg: "empty label"},
		{name: "bad char", routes: routesOf(Match{Host: "exa mple.com"}), key: "match.host", earlier: -1, msg: "invalid character ' '"},
		{name: "non-ASCII", routes: routesOf(Match{Host: "bücher.example"}), key: "match.host", earlier: -1, msg: "invalid character"},
		{name: "port", routes: routesOf(Match{Host: "example.com:8080"}), key: "match.host", earlier: -1, msg: "no port"},
		{name: "long label", routes: routesOf(Match{Host: strings.Repeat("a", 64) + ".com"}), key: "match.host", earlier: -1, msg: "longer than 63"},
		{name: "long host", routes: routesOf(Match{Host: strings.Repeat("abcdefgh.", 30) + "com"}), key: "match.host", earlier: -1, msg: "longer than 253"},
		{name: "IPv6 without brackets", routes: routesOf(Match{Host: "::1"}), key: "match.host", earlier: -1, msg: "in brackets"},
		{name: "IPv6 not RFC 5952", routes: routesOf(Match{Host: "[2001:db8:0:0::1]"}), key: "match.host", earlier: -1, msg: `"[2001:db8::1]"`},
		{name: "IPv6 with port", routes: routesOf(Match{Host: "[::1]:80"}), key: "match.host", earlier: -1, msg: "malformed IPv6"},
		{name: "IPv6 zone", routes: routesOf(Match{Host: "[fe80::1%eth0]"}), key: "match.host", earlier: -1, msg: "malformed IPv6"},
		{name: "IPv4 in brackets", routes: routesOf(Match{Host: "[127.0.0.1]"}), key: "match.host", earlier: -1, msg: "malformed IPv6"},

		{name: "path without slash", routes: routesOf(Match{Path: "api"}), key: "match.path", earlier: -1, msg: `must start with "/"`},
		{name: "path not normal", routes: routesOf(Match{Path: "/a//b"}), key: "match.path", earlier: -1, msg: `write "/a/b"`},
		{name: "path with dot segment", routes: routesOf(Match{Path: "/a/./b"}), key: "match.path", earlier: -1, msg: `write "/a/b"`},
		{name: "path lower-case escape", routes: routesOf(Match{Path: "/caf%c3%a9"}), key: "match.path", earlier: -1, msg: `write "/caf%C3%A9"`},
		{name: "path escaped unreserved", routes: routesOf(Match{Path: "/%7Euser"}), key: "match.path", earlier: -1, msg: `write "/~user"`},
		{name: "path raw non-ASCII", routes: routesOf(Match{Path: "/café"}), key: "match.path", earlier: -1, msg: `write "/caf%C3%A9"`},
		{name: "path refused", routes: routesOf(Match{Path: "/a%2Fb"}), key: "match.path", earlier: -1, msg: "refused with 400"},
		{name: "path above root", routes: routesOf(Match{Path: "/../etc"}), key: "match.path", earlier: -1, msg: "refused with 400"},
		{name: "path with query", routes: routesOf(Match{Path: "/a?b"}), key: "match.path", earlier: -1, msg: `"?"`},
		{name: "path star", routes: routesOf(Match{Path: "*"}), key: "match.path", earlier: -1, msg: `must start with "/"`},
		{name: "prefix without slash", routes: routesOf(Match{PathPrefix: "static/"}), key: "match.pathPrefix", earlier: -1, msg: `must start with "/"`},
		{name: "prefix not normal", routes: routesOf(Match{PathPrefix: "/static//"}), key: "match.pathPrefix", earlier: -1, msg: `write "/static/"`},
		{name: "prefix space", routes: routesOf(Match{PathPrefix: "/my files"}), key: "match.pathPrefix", earlier: -1, msg: "refused with 400"},
		{name: "path and prefix", routes: routesOf(Match{Path: "/a", PathPrefix: "/a"}), key: "match.pathPrefix", earlier: -1, msg: "cannot both"},

		{name: "empty method", routes: routesOf(Match{Methods: []string{"GET", ""}}), key: "match.methods[1]", earlier: -1, msg: "not a token"},
		{name: "method with space", routes: routesOf(Match{Methods: []string{"GET POST"}}), key: "match.methods[0]", earlier: -1, msg: "not a token"},
		{name: "header name", routes: routesOf(Match{Headers: []HeaderMatch{{Name: "X-A", Value: "1"}, {Name: "X A", Value: "1"}}}), key: "match.headers[1].name", earlier: -1, msg: "not a token"},
		{name: "header empty name", routes: routesOf(Match{Headers: []HeaderMatch{{Present: true}}}), key: "match.headers[0].name", earlier: -1, msg: "not a token"},
		{name: "header value with present", routes: routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: "1", Present: true}}}), key: "match.headers[0].value", earlier: -1, msg: "no value"},
		{name: "header value blank", routes: routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: " 1"}}}), key: "match.headers[0].value", earlier: -1, msg: "trims"},
		{name: "header value control", routes: routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: "a\r\nb"}}}), key: "match.headers[0].value", earlier: -1, msg: "control"},

		{name: "identical", routes: routesOf(Match{PathPrefix: "/a"}, ok, Match{PathPrefix: "/a"}),
			route: 2, key: "match", earlier: 0, msg: "same match"},
		{name: "identical after normalising", routes: routesOf(Match{Host: "A.Example.com.", PathPrefix: "/a/", Methods: []string{"GET", "PUT"}, Headers: []HeaderMatch{{Name: "x-a", Value: "1"}, {Name: "X-B", Present: true}}},
			Match{Host: "a.example.com", PathPrefix: "/a", Methods: []string{"PUT", "GET", "PUT"}, Headers: []HeaderMatch{{Name: "X-B", Present: true}, {Name: "X-A", Value: "1"}}}),
			route: 1, key: "match", earlier: 0, msg: "same match"},
		{name: "identical wildcard", routes: routesOf(Match{Host: "*.example.com"}, Match{Host: "*.EXAMPLE.com"}),
			route: 1, key: "match", earlier: 0, msg: "same match"},
		{name: "identical exact path", routes: routesOf(Match{Path: "/x"}, Match{Path: "/x"}),
			route: 1, key: "match", earlier: 0, msg: "same match"},
		{name: "identical empty", routes: routesOf(Match{}, Match{Methods: []string{}}),
			route: 1, key: "match", earlier: 0, msg: "same match"},
		{name: "fewer methods", routes: routesOf(Match{Path: "/x", Methods: []string{"GET", "POST"}}, Match{Path: "/x", Methods: []string{"POST"}}),
			route: 1, key: "match", earlier: 0, msg: "accepts every request"},
		{name: "no methods first", routes: routesOf(Match{Path: "/x"}, Match{Path: "/x", Methods: []string{"POST"}}),
			route: 1, key: "match", earlier: 0, msg: "accepts every request"},
		{name: "presence covers value", routes: routesOf(Match{Headers: []HeaderMatch{{Name: "X", Present: true}}}, Match{Headers: []HeaderMatch{{Name: "x", Value: "v"}, {Name: "Y", Present: true}}}),
			route: 1, key: "match", earlier: 0, msg: "accepts every request"},
		{name: "shadowed by the second", routes: routesOf(Match{Path: "/x", Methods: []string{"GET"}}, Match{Path: "/x", Methods: []string{"PUT"}}, Match{Path: "/x", Methods: []string{"PUT"}, Headers: []HeaderMatch{{Name: "X", Present: true}}}),
			route: 2, key: "match", earlier: 1, msg: "routes[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Compile(tt.routes)
			if tab != nil {
				t.Errorf("Compile returned a Table with an error")
			}
			errs := compileErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("Compile = %v, want one error", err)
			}
			e := errs[0]
			if e.Route != tt.route || e.Key != tt.key || e.Earlier != tt.earlier || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("Compile error = %+v, want route %d key %q earlier %d and a message with %q", e, tt.route, tt.key, tt.earlier, tt.msg)
			}
			if want := "routes[" + string(rune('0'+tt.route)) + "]." + tt.key + ": "; !strings.HasPrefix(e.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", e.Error(), want)
			}
		})
	}
}

// TestCompileAccepts lists routes that look close to an error but are
// fine, in particular ones that must not be taken as shadowed.
func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route
	}{
		{"hosts", routesOf(Match{Host: "EXAMPLE.com."}, Match{Host: "*.com"}, Match{Host: "a_b-c.example"},
			Match{Host: "127.0.0.1"}, Match{Host: "[::1]"}, Match{Host: "[2001:db8::ff00:42:8329]"}, Match{Host: "localhost"})},
		{"paths", routesOf(Match{Path: "/"}, Match{Path: "/a/"}, Match{Path: "/a"}, Match{Path: "/a%20b"},
			Match{Path: "/a;b=1"}, Match{Path: "/%C3%A9"}, Match{PathPrefix: "/"}, Match{PathPrefix: "/a/b/"})},
		{"more methods later", routesOf(Match{Path: "/x", Methods: []string{"GET"}}, Match{Path: "/x", Methods: []string{"GET", "POST"}})},
		{"methods later than none", routesOf(Match{Path: "/x", Methods: []string{"GET"}}, Match{Path: "/x"})},
		{"header later", routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: "1"}}}, Match{Headers: []HeaderMatch{{Name: "X", Value: "2"}}},
			Match{Headers: []HeaderMatch{{Name: "X", Present: true}}}, Match{})},
		{"value does not cover presence", routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: "1"}}}, Match{Headers: []HeaderMatch{{Name: "X", Present: true}}})},
		{"value is case-sensitive", routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: "a"}}}, Match{Headers: []HeaderMatch{{Name: "X", Value: "A"}}})},
		{"exact path and prefix differ", routesOf(Match{Path: "/a"}, Match{PathPrefix: "/a"})},
		{"exact host and wildcard differ", routesOf(Match{Host: "example.com"}, Match{Host: "*.example.com"})},
		{"exact paths differ by slash", routesOf(Match{Path: "/a"}, Match{Path: "/a/"})},
		{"header empty value", routesOf(Match{Headers: []HeaderMatch{{Name: "X", Value: ""}}})},
		{"duplicate empty names", []Route{{Match: Match{Path: "/a"}}, {Match: Match{Path: "/b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.routes); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

// TestCompileReportsAll checks that every problem is reported, in route
// order, and that a broken route does not also count as shadowed.
func TestCompileReportsAll(t *testing.T) {
	routes := []Route{
		{Name: "a", Match: Match{Host: "*"}},
		{Name: "a", Match: Match{Path: "x", Methods: []string{""}}},
		{Match: Match{Path: "/ok"}},
		{Match: Match{Path: "/ok"}},
		{Match: Match{Path: "/ok", Headers: []HeaderMatch{{Name: "X", Value: "\x00"}}}},
	}
	_, err := Compile(routes)
	var got []string
	for _, e := range compileErrors(t, err) {
		got = append(got, "routes["+string(rune('0'+e.Route))+"]."+e.Key)
	}
	want := []string{"routes[0].match.host", "routes[1].name", "routes[1].match.path", "routes[1].match.methods[0]",
		"routes[3].match", "routes[4].match.headers[0].value"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Compile errors at %v, want %v\n%v", got, want, err)
	}
	var first *CompileError
	if !errors.As(err, &first) || first.Key != "match.host" {
		t.Errorf("errors.As gives %+v, want the first error", first)
	}
}
