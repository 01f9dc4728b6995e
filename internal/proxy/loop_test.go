package proxy

import (
	"testing"
	"time"
)

// TestRetryBudget checks retries are held to the budget's share of recent
// requests, with a floor, and that the counts decay.
func TestRetryBudget(t *testing.T) {
	var b retryBudget
	for range 1000 {
		b.request()
	}
	granted := 0
	for range 1000 {
		if b.retry(20) {
			granted++
		}
	}
	if granted != 200 {
		t.Fatalf("granted %d retries for 1000 requests at 20%%, want 200", granted)
	}
	// With almost no traffic the floor still allows a few.
	var quiet retryBudget
	quiet.request()
	n := 0
	for quiet.retry(20) {
		n++
	}
	if n != minRetries {
		t.Fatalf("floor: %d retries, want %d", n, minRetries)
	}
	// Half-lives pass: old retries stop counting against new requests.
	b.decay(int64(budgetHalfLife))
	if b.retries != 100 || b.requests != 500 {
		t.Fatalf("after one half-life: %v retries, %v requests", b.retries, b.requests)
	}
	b.decay(int64(budgetHalfLife) + int64(time.Second)) // too soon: no change
	if b.retries != 100 {
		t.Fatalf("decayed twice within a half-life: %v", b.retries)
	}
}

// tickOwner is an owner that records its ticks and runs hook on the
// first one.
type tickOwner struct {
	ticks int
	hook  func()
}

func (o *tickOwner) cleanup()   {}
func (o *tickOwner) busy() bool { return false }
func (o *tickOwner) tick(int64, bool) {
	o.ticks++
	if o.hook != nil {
		o.hook()
		o.hook = nil
	}
}

// TestSweepSurvivesRemovingNext: a full sweep ticks every connection even
// when one's tick closes the next in the list (an upstream whose timeout
// closes its client, which closes the client's other upstream). The walk
// took the next element before the tick, and list.remove zeroes a removed
// element's links, so the pass ended there and the rest waited for the
// next full sweep.
func TestSweepSurvivesRemovingNext(t *testing.T) {
	for _, lists := range []string{"upstreams", "clients"} {
		t.Run(lists, func(t *testing.T) {
			lp := &loop{srv: &Server{}}
			owners := make([]*tickOwner, 4)
			var ups []*upstream
			var cls []*client
			for i := range owners {
				owners[i] = &tickOwner{}
				if lists == "upstreams" {
					up := &upstream{}
					up.peer.self = owners[i]
					lp.upstreams.push(up)
					ups = append(ups, up)
				} else {
					cl := &client{}
					cl.peer.self = owners[i]
					lp.clients.push(cl)
					cls = append(cls, cl)
				}
			}
			// push puts each at the head: the walk visits index 3, 2, 1, 0.
			// The tick of 3 removes 2 (the next one).
			owners[3].hook = func() {
				if lists == "upstreams" {
					ups[2].peer.closed = true
					lp.upstreams.remove(ups[2])
				} else {
					cls[2].peer.closed = true
					lp.clients.remove(cls[2])
				}
			}
			lp.sweep()
			for i, want := range []int{1, 1, 0, 1} {
				if owners[i].ticks != want {
					t.Errorf("connection %d ticked %d times, want %d", i, owners[i].ticks, want)
				}
			}
		})
	}
}
