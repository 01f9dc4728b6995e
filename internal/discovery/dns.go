package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNoMembers is wrapped by the error of a resolution whose answer says
// the name has no members: NXDOMAIN, no records of the type, SRV records
// whose targets are all "." or have no address. Any other error means the
// nameservers could not be asked or did not answer usefully.
var ErrNoMembers = errors.New("no members")

// ednsSize is the UDP payload size offered (the DNS flag day 2020 value);
// a larger answer comes truncated and is asked again over TCP.
const ednsSize = 1232

// answer is what one resolution found.
type answer struct {
	// members are merged by address and sorted, with raw weights
	// (normalised by normalizeWeights); empty when the name has none.
	members []Member
	// ttl is the smallest TTL of the records used or, for an answer
	// with no members, the negative-caching TTL of its SOA record (0
	// when there is none).
	ttl time.Duration
	// why says why there are no members, for the error; "" otherwise.
	why string
}

// lookup resolves the configured name once.
func (w *Watcher) lookup(ctx context.Context) (answer, error) {
	name := dns.Fqdn(w.cfg.Name)
	servers, err := w.servers()
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", w.cfg.Type, name, err)
	}
	switch w.cfg.Type {
	case TypeSRV:
		return w.lookupSRV(ctx, servers, name)
	case TypeAAAA:
		return w.lookupAddrs(ctx, servers, name, dns.TypeAAAA)
	default:
		return w.lookupAddrs(ctx, servers, name, dns.TypeA)
	}
}

// servers returns the nameservers to ask, as "ip:port".
func (w *Watcher) servers() ([]string, error) {
	if w.server != "" {
		return []string{w.server}, nil
	}
	cc, err := dns.ClientConfigFromFile(w.resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading the nameservers: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("%s lists no nameserver", w.resolvConf)
	}
	port := cc.Port
	if w.resolvPort != "" {
		port = w.resolvPort
	}
	list := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		list[i] = net.JoinHostPort(s, port)
	}
	return list, nil
}

// lookupAddrs resolves the A or AAAA records of name; each address is a
// member on the configured port with weight 1.
func (w *Watcher) lookupAddrs(ctx context.Context, servers []string, name string, qtype uint16) (answer, error) {
	r, err := w.query(ctx, servers, name, qtype)
	if err != nil {
		return answer{}, err
	}
	addrs, ttl := addresses(r.Answer, qtype)
	if len(addrs) == 0 {
		return noMembers(r, qtype), nil
	}
	ms := make([]Member, len(addrs))
	for i, a := range addrs {
		ms[i] = Member{Addr: netip.AddrPortFrom(a, uint16(w.cfg.Port)).String(), Weight: 1}
	}
	ms = merge(ms)
	for i := range ms {
		ms[i].Weight = 1 // an address listed twice is one member
	}
	return answer{members: ms, ttl: ttl}, nil
}

// lookupSRV resolves the SRV records of name and the addresses of their
// targets. Only the records of the lowest priority are used (ConnX has no
// backup tier). A target's addresses come from the answer's additional
// section when it has them, else from an A query, else from AAAA: one
// address family per target, IPv4 first.
func (w *Watcher) lookupSRV(ctx context.Context, servers []string, name string) (answer, error) {
	r, err := w.query(ctx, servers, name, dns.TypeSRV)
	if err != nil {
		return answer{}, err
	}
	var srvs []*dns.SRV
	ttl := time.Duration(-1)
	for _, rr := range r.Answer {
		ttl = minTTL(ttl, rr)
		if s, ok := rr.(*dns.SRV); ok {
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		return noMembers(r, dns.TypeSRV), nil
	}
	lowest := slices.MinFunc(srvs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) }).Priority
	srvs = slices.DeleteFunc(srvs, func(s *dns.SRV) bool { return s.Priority != lowest || s.Target == "." })
	if len(srvs) == 0 {
		return answer{ttl: ttl, why: "every SRV record of the lowest priority has the target \".\" (service not available)"}, nil
	}

	// The additional section, by owner name.
	extra := map[string][]dns.RR{}
	for _, rr := range r.Extra {
		n := strings.ToLower(rr.Header().Name)
		extra[n] = append(extra[n], rr)
	}
	targets := map[string][]netip.Addr{}
	var ms []Member
	for _, s := range srvs {
		t := strings.ToLower(s.Target)
		addrs, seen := targets[t]
		if !seen {
			var tttl time.Duration
			addrs, tttl, err = w.targetAddrs(ctx, servers, t, extra[t])
			if err != nil {
				return answer{}, err
			}
			targets[t] = addrs
			if len(addrs) > 0 {
				ttl = min(ttl, tttl)
			}
		}
		for _, a := range addrs {
			ms = append(ms, Member{Addr: netip.AddrPortFrom(a, s.Port).String(), Weight: int(s.Weight)})
		}
	}
	if len(ms) == 0 {
		return answer{ttl: ttl, why: "no SRV target has an address"}, nil
	}
	return answer{members: merge(ms), ttl: ttl}, nil
}

// targetAddrs returns the addresses of an SRV target and their smallest
// TTL: those of the additional section (extra) when there are A records
// there, else of an A query, else of the additional AAAA records, else
// of an AAAA query. A target with no address gives none and no error.
func (w *Watcher) targetAddrs(ctx context.Context, servers []string, target string, extra []dns.RR) ([]netip.Addr, time.Duration, error) {
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if addrs, ttl := addresses(extra, qtype); len(addrs) > 0 {
			return addrs, ttl, nil
		}
		r, err := w.query(ctx, servers, target, qtype)
		if err != nil {
			return nil, 0, err
		}
		if addrs, ttl := addresses(r.Answer, qtype); len(addrs) > 0 {
			return addrs, ttl, nil
		}
	}
	return nil, 0, nil
}

// addresses returns the addresses of the A or AAAA records (qtype) in
// rrs and the smallest TTL of all of rrs (a CNAME chain's records
// included).
func addresses(rrs []dns.RR, qtype uint16) ([]netip.Addr, time.Duration) {
	var addrs []netip.Addr
	ttl := time.Duration(-1)
	for _, rr := range rrs {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				ip = v.A
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				ip = v.AAAA
			}
		case *dns.CNAME:
		default:
			continue
		}
		ttl = minTTL(ttl, rr)
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return addrs, max(ttl, 0)
}

// minTTL is the smaller of ttl (negative: none yet) and rr's TTL.
func minTTL(ttl time.Duration, rr dns.RR) time.Duration {
	t := time.Duration(rr.Header().Ttl) * time.Second
	if ttl < 0 {
		return t
	}
	return min(ttl, t)
}

// noMembers is the answer for a reply that has no records to use: its
// negative TTL comes from the SOA record of the authority section (RFC
// 2308: the smaller of its TTL and its MINIMUM field).
func noMembers(r *dns.Msg, qtype uint16) answer {
	a := answer{why: "no " + dns.TypeToString[qtype] + " records"}
	if r.Rcode == dns.RcodeNameError {
		a.why = "NXDOMAIN (no such name)"
	}
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			a.ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			break
		}
	}
	return a
}

// query asks each nameserver in turn for name's records of type qtype
// and returns the first reply that answers (NOERROR or NXDOMAIN). The
// error names each server's failure.
func (w *Watcher) query(ctx context.Context, servers []string, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	var fails []string
	for _, s := range servers {
		r, err := w.exchange(ctx, s, m)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			fails = append(fails, s+": "+err.Error())
		case r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError:
			return r, nil
		default:
			fails = append(fails, s+": "+rcodeName(r.Rcode))
		}
	}
	return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qtype], name, strings.Join(fails, "; "))
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rc)
}

// exchange sends m to server over UDP and, when the reply is truncated,
// again over TCP.
func (w *Watcher) exchange(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	r, err := w.exchangeNet(ctx, "udp", server, m)
	if err == nil && r.Truncated {
		r, err = w.exchangeNet(ctx, "tcp", server, m)
	}
	return r, err
}

// exchangeNet sends m and reads the reply within Config.Timeout. A done
// ctx ends the exchange at once: the client only honours deadlines, so the
// connection's deadline is moved to the past.
func (w *Watcher) exchangeNet(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: w.cfg.Timeout, UDPSize: ednsSize}
	qctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	co, err := c.DialContext(qctx, server)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	done := make(chan struct{})
	stop := context.AfterFunc(qctx, func() {
		_ = co.SetDeadline(time.Unix(1, 0))
		close(done)
	})
	defer func() {
		if !stop() {
			<-done // the func runs: wait, so no goroutine outlives the call
		}
	}()
	r, _, err := c.ExchangeWithConnContext(qctx, m, co)
	if err != nil {
		return nil, err
	}
	if len(r.Question) > 0 && !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) {
		return nil, fmt.Errorf("the reply is for %q, not %q", r.Question[0].Name, m.Question[0].Name)
	}
	return r, nil
}

// merge merges members with the same address (summing their weights) and
// sorts them by address.
func merge(ms []Member) []Member {
	slices.SortFunc(ms, compareMembers)
	out := ms[:0]
	for _, m := range ms {
		if n := len(out); n > 0 && out[n-1].Addr == m.Addr {
			out[n-1].Weight += m.Weight
			continue
		}
		out = append(out, m)
	}
	return out
}

// compareMembers orders members by address (numerically: 10.0.0.2 before
// 10.0.0.10), then port.
func compareMembers(a, b Member) int {
	pa, ea := netip.ParseAddrPort(a.Addr)
	pb, eb := netip.ParseAddrPort(b.Addr)
	if ea != nil || eb != nil {
		return strings.Compare(a.Addr, b.Addr)
	}
	return pa.Compare(pb)
}

// normalizeWeights maps SRV weights (0-65535, summed when records share
// an address) to ConnX weights (1-1000), keeping their proportions: all
// zero become 1; otherwise the largest becomes 1000 when it is over 1000,
// and a 0 becomes 1, the smallest share ConnX has (RFC 2782: weight 0
// gets "a very small chance" next to the others).
func normalizeWeights(ms []Member) {
	top := 0
	for _, m := range ms {
		top = max(top, m.Weight)
	}
	for i := range ms {
		w := ms[i].Weight
		if top > maxWeight {
			w = (w*maxWeight + top/2) / top
		}
		ms[i].Weight = min(max(w, 1), maxWeight)
	}
}

// maxWeight is config's largest backend weight.
const maxWeight = 1000
