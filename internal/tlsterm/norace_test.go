//go:build !race

package tlsterm

const raceBuild = false
