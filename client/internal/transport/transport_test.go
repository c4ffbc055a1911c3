package transport

import "testing"

func TestServerHost(t *testing.T) {
	for _, tc := range []struct {
		addr, host string
		err        bool
	}{
		{"example.org:7600", "example.org", false},
		{"127.0.0.1:7600", "127.0.0.1", false},
		{"[::1]:7600", "::1", false},
		{"wss://chat.example.org/ws", "chat.example.org", false},
		{"ws://127.0.0.1:8080/ws", "127.0.0.1", false},
		{"wss:///ws", "", true},
		{"example.org", "", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			host, err := ServerHost(tc.addr)
			if (err != nil) != tc.err || host != tc.host {
				t.Errorf("ServerHost(%q) = %q, %v; want %q, error %v", tc.addr, host, err, tc.host, tc.err)
			}
		})
	}
}
