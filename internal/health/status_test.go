package health

import (
	"strings"
	"testing"
)

func TestParseStatusSet(t *testing.T) {
	tests := []struct {
		in          string
		has, hasNot []int
		text        string
		err         string
	}{
		{in: "200-399", has: []int{200, 301, 302, 399}, hasNot: []int{199, 400, 500}, text: "200-399"},
		{in: "200", has: []int{200}, hasNot: []int{201, 199}, text: "200"},
		{in: " 200 , 204,300-302 ", has: []int{200, 204, 300, 302}, hasNot: []int{201, 303}, text: "200,204,300-302"},
		{in: "2xx", has: []int{200, 299}, hasNot: []int{300, 199}, text: "2xx"},
		{in: "5xx,404", has: []int{404, 500, 599}, hasNot: []int{200, 405}, text: "5xx,404"},
		{in: "100-599", has: []int{100, 599}, hasNot: []int{99, 600, 0, -1}, text: "100-599"},
		{in: "", err: "empty item"},
		{in: "200,", err: "empty item"},
		{in: "600", err: `"600" is not a status code between 100 and 599`},
		{in: "99", err: "not a status code"},
		{in: "abc", err: "not a status code"},
		{in: "300-200", err: "runs backwards"},
		{in: "200-", err: "not a status code"},
		{in: "6xx", err: "not a status code"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseStatusSet(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.has {
				if !s.Contains(c) {
					t.Errorf("does not contain %d", c)
				}
			}
			for _, c := range tt.hasNot {
				if s.Contains(c) {
					t.Errorf("contains %d", c)
				}
			}
			if s.String() != tt.text || s.Empty() {
				t.Errorf("String() = %q, Empty() = %v", s.String(), s.Empty())
			}
		})
	}
	if !(StatusSet{}).Empty() {
		t.Error("zero StatusSet not empty")
	}
}
