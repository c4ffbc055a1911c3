package server_test

import (
	"io"
	"slices"
	"testing"

	"github.com/natterim/natter/internal/server"
)

// TestCertFlags: --tls-cert/--tls-key and their old names --cert/--key
// fill the same Config fields; the ACME flags parse, and conflicting or
// malformed certificate flags are usage errors.
func TestCertFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		cert, key string
		domains   []string
		directory string
		bad       bool
	}{
		{"none", nil, "", "", nil, server.DefaultACMEDirectory, false},
		{"new names", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, "c.pem", "k.pem", nil, server.DefaultACMEDirectory, false},
		{"old names", []string{"--cert", "c.pem", "--key", "k.pem"}, "c.pem", "k.pem", nil, server.DefaultACMEDirectory, false},
		{"mixed names", []string{"--tls-cert", "c.pem", "--key", "k.pem"}, "c.pem", "k.pem", nil, server.DefaultACMEDirectory, false},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "", "", nil, "", true},
		{"acme", []string{"--acme-domain", "Chat.Example.org., www.example.org,chat.example.org", "--acme-directory", "https://127.0.0.1:14000/dir"},
			"", "", []string{"chat.example.org", "www.example.org"}, "https://127.0.0.1:14000/dir", false},
		{"acme and a certificate", []string{"--acme-domain", "chat.example.org", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "", "", nil, "", true},
		{"acme for an address", []string{"--acme-domain", "192.0.2.7"}, "", "", nil, "", true},
		{"acme for a single label", []string{"--acme-domain", "localhost"}, "", "", nil, "", true},
		{"acme for nothing", []string{"--acme-domain", " , "}, "", "", nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := server.ParseFlags(tc.args, io.Discard)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseFlags(%q) accepted it", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tc.args, err)
			}
			if cfg.CertFile != tc.cert || cfg.KeyFile != tc.key || !slices.Equal(cfg.ACMEDomains, tc.domains) || cfg.ACMEDirectory != tc.directory {
				t.Errorf("got cert %q key %q domains %q directory %q; want %q %q %q %q",
					cfg.CertFile, cfg.KeyFile, cfg.ACMEDomains, cfg.ACMEDirectory, tc.cert, tc.key, tc.domains, tc.directory)
			}
		})
	}
}
