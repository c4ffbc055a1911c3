package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/natterim/natter/internal/membus"
)

// TestOpenBus: no --bus is the in-process bus; anything but nats:// (or
// tls://) URLs is refused before any connection is tried; a NATS server
// that does not answer fails the start with the address in the error.
// (natsbus's own tests run the NATS bus against real servers.)
func TestOpenBus(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "nats://" + l.Addr().String()
	l.Close()
	tests := []struct {
		bus     string
		wantErr string // "" for success
	}{
		{"", ""},
		{"redis://127.0.0.1:6379", "want nats:// URLs"},
		{"127.0.0.1:4222", "want nats:// URLs"},
		{"nats://127.0.0.1:4222,postgres://x", "want nats:// URLs"},
		{"nats://user:secret@127.0.0.1:1,http://x", "want nats:// URLs"},
		{closed, "--bus: natsbus: connect to " + closed},
	}
	for _, tt := range tests {
		t.Run(tt.bus, func(t *testing.T) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			bus, reg, err := openBus(context.Background(), Config{Bus: tt.bus}, log, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openBus(%q): %v, want an error with %q", tt.bus, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("openBus(%q): %v", tt.bus, err)
			}
			defer bus.Close()
			if _, ok := bus.(*membus.Bus); !ok {
				t.Errorf("bus is %T, want the in-process *membus.Bus", bus)
			}
			if _, ok := reg.(*membus.Registry); !ok {
				t.Errorf("registry is %T, want *membus.Registry", reg)
			}
		})
	}
}
