package server

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/natterim/natter/internal/tlscert"
)

// loadCertificate sets up the listeners' certificate from the Config: the
// operator's files, ACME, or the self-generated one (in that order of
// precedence; ParseFlags refuses files and ACME together).
func (s *Server) loadCertificate() error {
	cfg := s.cfg
	switch {
	case cfg.CertFile != "" && len(cfg.ACMEDomains) > 0:
		return errors.New("certificate: give either --tls-cert/--tls-key or --acme-domain, not both")
	case len(cfg.ACMEDomains) > 0:
		if cfg.HTTP == "" {
			return errors.New("certificate: ACME answers its challenges on the HTTPS listener: --acme-domain needs --http")
		}
		domains, err := checkACMEDomains(cfg.ACMEDomains)
		if err != nil {
			return fmt.Errorf("--acme-domain: %w", err)
		}
		cfg.ACMEDomains = domains
		if s.acme, err = newACME(cfg, s.log); err != nil {
			return err
		}
		s.hsts = true
		return nil
	}
	var err error
	if cfg.CertFile != "" {
		s.cert, err = tlscert.Load(cfg.CertFile, cfg.KeyFile)
		s.hsts = true
	} else {
		s.cert, err = tlscert.LoadOrCreate(cfg.DataDir, cfg.Hosts, s.log)
	}
	if err != nil {
		return err
	}
	leaf := s.cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(s.cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate: %w", err)
		}
	}
	s.fp = tlscert.Fingerprint(leaf)
	return nil
}
