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
