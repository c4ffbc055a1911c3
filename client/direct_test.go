package client_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/internal/servertest"
)

// loopbackOnly keeps pion on 127.0.0.1: tests send nothing off the machine.
func loopbackOnly(se *webrtc.SettingEngine) {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
}

func withDirect(relayOnly bool) func(*client.Options) {
	return func(o *client.Options) {
		o.Direct, o.DirectRelayOnly, o.DirectSettings = true, relayOnly, loopbackOnly
	}
}

// metricValue reads a metric (summed over labels) from the server.
func metricValue(t *testing.T, inst *servertest.Instance, name string) float64 {
	t.Helper()
	return inst.Metric(t, name)
}

// metricValueLabel reads the series of name with path label path.
func metricValueLabel(t *testing.T, inst *servertest.Instance, name, path string) float64 {
	t.Helper()
	return inst.Metric(t, name, `path="`+path+`"`)
}

// waitReach waits until u has seen peer register connection info.
func waitReach(t *testing.T, u *user, peer natter.UserID) {
	t.Helper()
	u.ev.until(func(e client.Event) bool {
		r, ok := e.(client.ReachEvent)
		return ok && r.User == peer && len(r.Candidates) > 0
	})
}

func TestDirectConversation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relayOnly bool
		want      string
	}{
		{"direct", false, client.PathDirect},
		{"relayed through natterd's TURN", true, client.PathRelayed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := startServer(t)
			alice := signup(t, inst, "alice", "alice-1", withDirect(tc.relayOnly))
			alice2, _ := login(t, inst, "alice", "alice-2")
			bob := signup(t, inst, "bob", "bob-1", withDirect(tc.relayOnly))
			befriend(t, alice, bob)
			waitReach(t, alice, "bob")

			path, rtt, err := alice.OpenDirect(t.Context(), "bob")
			if err != nil {
				t.Fatalf("open direct: %v", err)
			}
			if path != tc.want {
				t.Fatalf("path %s, want %s", path, tc.want)
			}
			t.Logf("path %s, rtt %v", path, rtt)
			relayed := metricValue(t, inst, "natter_messages_total")

			for i := range 20 {
				body := "direct " + strconv.Itoa(i)
				res, err := alice.Send(t.Context(), "bob", []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				if res.Path != tc.want {
					t.Fatalf("send %d went %s", i, res.Path)
				}
				ev := bob.ev.message(res.ID)
				if string(ev.Message.Body) != body || ev.Path != tc.want || ev.Message.From != "alice" {
					t.Fatalf("bob got %+v", ev)
				}
				// alice's other device gets the copy.
				cp := alice2.ev.message(res.ID)
				if cp.Path != client.PathDirect || string(cp.Message.Body) != body {
					t.Fatalf("alice's other device got %+v", cp)
				}
			}
			// natterd did not carry them: its counter of relayed messages
			// did not move; the copies are counted apart.
			if n := metricValue(t, inst, "natter_messages_total"); n != relayed {
				t.Fatalf("natter_messages_total moved from %v to %v during a direct conversation", relayed, n)
			}
			// Copies are stored in the background: wait for all 40.
			deadline := time.Now().Add(10 * time.Second)
			for metricValue(t, inst, "natter_direct_copies_total") < 40 {
				if time.Now().After(deadline) {
					t.Fatalf("natter_direct_copies_total = %v, want 40 (one per side per message)", metricValue(t, inst, "natter_direct_copies_total"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if tc.relayOnly {
				if n := metricValue(t, inst, "natter_turn_relayed_bytes_total"); n == 0 {
					t.Fatal("relayed path but natterd's TURN relayed nothing")
				}
			}
			// natterd counts the channel once, on its path.
			wantLabel := map[string]string{client.PathDirect: "direct", client.PathRelayed: "relayed"}[tc.want]
			if n := metricValueLabel(t, inst, "natter_conversations", wantLabel); n != 1 {
				t.Errorf("natter_conversations{path=%q} = %v, want 1", wantLabel, n)
			}
			// bob answers over the same channel.
			res, err := bob.Send(t.Context(), "alice", []byte("and back"))
			if err != nil || res.Path != tc.want {
				t.Fatalf("bob's answer: %+v %v", res, err)
			}
			if ev := alice.ev.message(res.ID); string(ev.Message.Body) != "and back" {
				t.Fatalf("alice got %+v", ev)
			}
		})
	}
}

// TestDirectFallsBackToServer: a peer without peer-to-peer gets messages
// through the server, and the sender says so.
func TestDirectFallsBackToServer(t *testing.T) {
	inst := startServer(t)
	alice := signup(t, inst, "alice", "alice-1", withDirect(false))
	bob := signup(t, inst, "bob", "bob-1") // no Direct
	befriend(t, alice, bob)
	if _, _, err := alice.OpenDirect(t.Context(), "bob"); err == nil {
		t.Fatal("opened a channel to a device that takes none")
	}
	res, err := alice.Send(t.Context(), "bob", []byte("via server"))
	if err != nil || res.Path != client.PathServer || res.ConvSeq == 0 {
		t.Fatalf("send: %+v %v", res, err)
	}
	if ev := bob.ev.message(res.ID); ev.Path != client.PathServer {
		t.Fatalf("bob got %+v", ev)
	}
	if p, _ := alice.PathTo("bob"); p != client.PathServer {
		t.Fatalf("PathTo = %s", p)
	}
	if n := metricValueLabel(t, inst, "natter_conversations", "server"); n != 1 {
		t.Errorf("natter_conversations{path=\"server\"} = %v, want 1", n)
	}
}
