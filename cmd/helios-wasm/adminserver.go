package main

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/storage"
)

// defaultKeepVersions is --keep-versions' default (and serve's keep_versions).
const defaultKeepVersions = 10

// startAdmin serves the admin API on addr. Without an explicit token it
// uses (creating it on first start) the data directory's admin.token, which
// `plugin swap` and the other client commands read via --data-dir.
func startAdmin(db *storage.DB, addr, token string, allowedHosts []string, reg prometheus.Gatherer) (*admin.Server, error) {
	if token == "" {
		var err error
		if token, err = admin.LoadOrCreateToken(db.Dir()); err != nil {
			return nil, err
		}
	}
	srv, err := admin.Start(admin.Config{Addr: addr, Token: token, AllowedHosts: allowedHosts, Gatherer: reg})
	switch {
	case errors.Is(err, admin.ErrBadAllowedHost):
		return nil, fmt.Errorf("--admin-allowed-hosts: %w", err)
	case err != nil:
		return nil, fmt.Errorf("--admin %s: %w", addr, err)
	}
	return srv, nil
}
