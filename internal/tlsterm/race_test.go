//go:build race

package tlsterm

// raceBuild: the race detector's sync.Pool drops a quarter of what is
// put back, so crypto/tls's pooled record buffer is sometimes allocated
// again and allocation counts are not what a normal build does.
const raceBuild = true
