package main

import (
	"errors"

	"github.com/connx/connx/internal/config"
)

// errDiscoveryNotServed refuses a configuration whose default pool takes
// its members from DNS: config validates it and internal/discovery
// resolves it, but the proxy does not take members from it yet, and
// starting would serve an empty pool. (Named pools, with or without
// discovery, are refused by the proxy itself.)
var errDiscoveryNotServed = errors.New("discovery is validated (connx -check) but not served by this version of connx yet; list the backends instead (docs/discovery.md)")

// discoveryServable returns errDiscoveryNotServed for a configuration with
// top-level discovery.
func discoveryServable(cfg *config.Config) error {
	if cfg.Discovery != nil {
		return errDiscoveryNotServed
	}
	return nil
}
