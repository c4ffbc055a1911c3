package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/p2p"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// through makes a Client connect through the MITM proxy m.
func through(m *mitm) func(*client.Options) {
	return func(o *client.Options) { o.Addr = m.Addr }
}

// TestNoPlaintextReachesTheServer runs conversations online, offline and
// peer to peer (whose copies go through the server) and then finds none of
// their text in what crossed the server's sockets nor in its data folder.
func TestNoPlaintextReachesTheServer(t *testing.T) {
	inst := startServer(t)
	m := startMITM(t, inst, nil)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1", through(m), withDirect(false))
	alice2, _ := login(t, inst, "alice", "a2", through(m))
	bob := signup(t, inst, "bob", "b1", through(m), withDirect(false))
	befriend(t, alice, bob)
	// alice keeps a server-side history: it must be sealed too.
	if err := alice.SetArchive(ctx, true); err != nil {
		t.Fatal(err)
	}

	var secrets []string
	say := func(from *user, to natter.UserID, text string, readers ...*user) {
		t.Helper()
		secrets = append(secrets, text)
		res, err := from.Send(ctx, to, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range readers {
			t.Logf("%s/%s waits for %q", r.name, r.dev, text)
			ev := r.ev.message(res.ID)
			if ev.OpenErr != nil || string(ev.Message.Body) != text {
				t.Fatalf("%s/%s got %q, %v", r.name, r.dev, ev.Message.Body, ev.OpenErr)
			}
		}
	}
	say(alice, "bob", "zebra-online-7781", bob, alice2)
	say(bob, "alice", "quartz-reply-1193", alice, alice2)

	// A file through the server's store (bob keeps no chunk cache).
	src := filepath.Join(t.TempDir(), "narwhal-name-6620.txt")
	if err := os.WriteFile(src, []byte(strings.Repeat("narwhal-file-3321 ", 40000)), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, "narwhal-file-3321", "narwhal-name-6620")
	fres, _, err := alice.SendFile(ctx, "bob", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := bob.ev.message(fres.ID); ev.File == nil {
		t.Fatalf("bob got %+v", ev)
	} else if p, err := bob.FetchFile(ctx, ev.File, t.TempDir(), nil); err != nil || !sameFile(t, src, p) {
		t.Fatalf("bob's copy of the file: %v", err)
	}
	alice2.ev.message(fres.ID)

	// Peer to peer: the message goes over the channel, the copies through
	// the server.
	// (Bob's reach may have gone by among the skipped events: retry.)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, _, err := alice.OpenDirect(ctx, "bob")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open direct: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := alice.Send(ctx, "bob", []byte("walrus-direct-4410"))
	if err != nil || res.Path == client.PathServer {
		t.Fatalf("direct send: %+v, %v", res, err)
	}
	secrets = append(secrets, "walrus-direct-4410")
	if ev := alice2.ev.message(res.ID); string(ev.Message.Body) != "walrus-direct-4410" {
		t.Fatalf("alice's other device got the copy as %q, %v", ev.Message.Body, ev.OpenErr)
	}

	// Offline: stored and delivered at bob's next login.
	bob.Close()
	say(alice, "bob", "marmot-offline-5502")
	bob2, ibs := login(t, inst, "bob", "b1", through(m))
	got := ""
	for _, ib := range ibs {
		for _, g := range ib.Groups {
			for _, msg := range g.Messages {
				if ib.OpenErrs[msg.ID] != nil {
					t.Fatalf("offline message not opened: %v", ib.OpenErrs[msg.ID])
				}
				got += string(msg.Body) + " "
			}
		}
	}
	if !strings.Contains(got, "marmot-offline-5502") {
		t.Fatalf("bob's inbox: %q", got)
	}
	_ = bob2

	// Everything is in alice's archive (read back by her other device),
	// so what the server holds of it is checked below too.
	archived := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		archived = ""
		msgs, _, _, err := alice2.FetchArchive(ctx, 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			archived += string(m.Message.Body) + " "
		}
		if strings.Contains(archived, "marmot-offline-5502") && strings.Contains(archived, "walrus-direct-4410") &&
			strings.Contains(archived, "narwhal-name-6620") {
			break
		}
	}
	for _, s := range []string{"zebra-online-7781", "quartz-reply-1193", "walrus-direct-4410", "marmot-offline-5502", "narwhal-name-6620"} {
		if !strings.Contains(archived, s) {
			t.Errorf("%q is not in alice's archive: %q", s, archived)
		}
	}

	wire := m.Seen()
	if !bytes.Contains(wire, []byte(`"bob"`)) {
		t.Fatal("the proxy saw no frames: the check below would prove nothing")
	}
	files := readTree(t, inst.DataDir)
	if !bytes.Contains(files, []byte("alice")) {
		t.Fatal("no user name in the data folder: the check below would prove nothing")
	}
	for _, s := range secrets {
		for _, part := range []string{s, strings.Split(s, "-")[0]} {
			if bytes.Contains(wire, []byte(part)) {
				t.Errorf("%q crossed the server's sockets in the clear", part)
			}
			if bytes.Contains(files, []byte(part)) {
				t.Errorf("%q is in the server's data folder in the clear", part)
			}
		}
	}
}

// readTree returns every file under dir, concatenated.
func readTree(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		all = append(all, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestSafetyNumbersAndKeyChange(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)

	na, verified, err := alice.SafetyNumber(ctx, "bob")
	if err != nil || verified {
		t.Fatalf("alice's number: %q %v %v", na, verified, err)
	}
	nb, _, err := bob.SafetyNumber(ctx, "alice")
	if err != nil || na != nb {
		t.Fatalf("numbers differ: alice sees %q, bob %q (%v)", na, nb, err)
	}
	if err := alice.MarkVerified(ctx, "bob", "00000 00000 00000 00000 00000 00000"); err == nil {
		t.Fatal("marked verified with a wrong number")
	}
	if err := alice.MarkVerified(ctx, "bob", na); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := alice.SafetyNumber(ctx, "bob"); !v {
		t.Fatal("not verified after MarkVerified")
	}
	if _, err := alice.Send(ctx, "bob", []byte("before")); err != nil {
		t.Fatal(err)
	}

	// Bob loses his phone: a new device with a new identity.
	bob.Close()
	bobNew := dialServer(t, inst, "b2", func(o *client.Options) {
		kr, _ := seal.New("bob", "b2")
		o.Keys = kr
	})
	if _, err := bobNew.Login(ctx, "bob", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := bobNew.ResetIdentity(ctx); err != nil {
		t.Fatal(err)
	}
	// Alice is warned as soon as it happens ...
	ev := alice.ev.until(func(e client.Event) bool {
		k, ok := e.(client.KeysEvent)
		return ok && k.User == "bob" && k.Changed
	}).(client.KeysEvent)
	if !errors.Is(ev.Err, seal.ErrKeyChanged) {
		t.Fatalf("keys event for a verified contact: %+v", ev)
	}
	// ... and nothing is sent to bob until she verifies the new key.
	if _, err := alice.Send(ctx, "bob", []byte("after")); !errors.Is(err, seal.ErrKeyChanged) {
		t.Fatalf("send after the key change: %v, want seal.ErrKeyChanged", err)
	}
	n2, verified, err := alice.SafetyNumber(ctx, "bob")
	if n2 == na || verified {
		t.Fatalf("after the change: number %q (old %q), verified %v, %v", n2, na, verified, err)
	}
	if err := alice.MarkVerified(ctx, "bob", n2); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", []byte("after verifying")); err != nil {
		t.Fatal(err)
	}
}

func TestApproveDevice(t *testing.T) {
	inst := startServer(t)
	ctx := t.Context()
	alice := signup(t, inst, "alice", "a1")
	bob := signup(t, inst, "bob", "b1")
	befriend(t, alice, bob)

	// A new device of alice's, without the identity: it must be approved.
	kr, err := seal.New("alice", "a2")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := login(t, inst, "alice", "a2", func(o *client.Options) { o.Keys = kr })
	if _, err := a2.Send(ctx, "bob", []byte("hi")); !errors.Is(err, client.ErrDeviceNotApproved) {
		t.Fatalf("send from an unapproved device: %v", err)
	}
	ev := alice.ev.until(func(e client.Event) bool {
		k, ok := e.(client.KeysEvent)
		return ok && k.User == "alice" && len(k.Pending) > 0
	}).(client.KeysEvent)
	if ev.Pending[0] != "a2" {
		t.Fatalf("pending %v", ev.Pending)
	}
	// Nothing bob sends now is sealed for a2.
	res, err := bob.Send(ctx, "alice", []byte("only for approved devices"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := a2.ev.message(res.ID); !errors.Is(ev.OpenErr, seal.ErrNotForMe) {
		t.Fatalf("unapproved device opened %q (%v)", ev.Message.Body, ev.OpenErr)
	}
	if err := a2.ApproveDevice(ctx, "a2"); err == nil {
		t.Fatal("a device without the identity approved itself")
	}
	if err := alice.ApproveDevice(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	devs, err := alice.Devices(ctx)
	if err != nil || len(devs) != 2 || !devs[0].Approved || !devs[1].Approved {
		t.Fatalf("devices %+v, %v", devs, err)
	}
	// Bob learns of the new device and seals for it.
	bob.ev.until(func(e client.Event) bool {
		k, ok := e.(client.KeysEvent)
		return ok && k.User == "alice" && len(k.Devices) == 2
	})
	res, err = bob.Send(ctx, "alice", []byte("now for a2 too"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := a2.ev.message(res.ID); ev.OpenErr != nil || string(ev.Message.Body) != "now for a2 too" {
		t.Fatalf("approved device: %q, %v", ev.Message.Body, ev.OpenErr)
	}
	res, err = a2.Send(ctx, "bob", []byte("from a2"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := bob.ev.message(res.ID); ev.OpenErr != nil || string(ev.Message.Body) != "from a2" || ev.Message.FromDevice != "a2" {
		t.Fatalf("bob got %+v", ev)
	}
}

// TestDirectChannelBoundToDeviceKeys: a peer-to-peer channel whose DTLS
// certificate is not the one the peer device's signed keys name is
// refused, whether the server swaps the fingerprints in the signalling it
// relays or the other end of the channel is someone else's.
func TestDirectChannelBoundToDeviceKeys(t *testing.T) {
	t.Run("server swaps fingerprints", func(t *testing.T) {
		inst := startServer(t)
		evil := mustCert(t)
		fpRE := regexp.MustCompile(`a=fingerprint:sha-256 [0-9A-Fa-f:]+`)
		swapped := 0
		m := startMITM(t, inst, func(f *wire.Frame) {
			if f.Type != wire.TSignalIn {
				return
			}
			var s wire.SignalIn
			if json.Unmarshal(f.Payload, &s) != nil || (s.Kind != p2p.KindOffer && s.Kind != p2p.KindAnswer) {
				return
			}
			var d webrtc.SessionDescription
			if json.Unmarshal(s.Data, &d) != nil {
				return
			}
			d.SDP = fpRE.ReplaceAllString(d.SDP, "a=fingerprint:"+sdpFingerprint(evil))
			s.Data, _ = json.Marshal(d)
			f.Payload, _ = json.Marshal(s)
			swapped++
		})
		ctx := t.Context()
		alice := signup(t, inst, "alice", "a1", through(m), withDirect(false))
		bob := signup(t, inst, "bob", "b1", through(m), withDirect(false))
		befriend(t, alice, bob)
		waitReach(t, alice, "bob")
		if path, _, err := alice.OpenDirect(ctx, "bob"); err == nil {
			t.Fatalf("a channel came up (%s) through swapped fingerprints", path)
		}
		if swapped == 0 {
			t.Fatal("the proxy swapped nothing: the test proves nothing")
		}
		res, err := alice.Send(ctx, "bob", []byte("still private"))
		if err != nil || res.Path != client.PathServer {
			t.Fatalf("send: %+v, %v", res, err)
		}
		if ev := bob.ev.message(res.ID); string(ev.Message.Body) != "still private" {
			t.Fatalf("bob got %q, %v", ev.Message.Body, ev.OpenErr)
		}
	})
	t.Run("other end is not the device", func(t *testing.T) {
		// Bob's channel endpoint uses a certificate that is not the one his
		// signed bundle names: what a server sitting in the middle of the
		// channel (with its own certificate in the SDP) would look like.
		inst := startServer(t)
		ctx := t.Context()
		alice := signup(t, inst, "alice", "a1", withDirect(false))
		named, used := mustCert(t), mustCert(t)
		pem, err := used.PEM()
		if err != nil {
			t.Fatal(err)
		}
		bob := signup(t, inst, "bob", "b1", withDirect(false), func(o *client.Options) {
			if err := o.Keys.SetDTLS(pem, p2p.Fingerprint(named)); err != nil {
				t.Fatal(err)
			}
		})
		befriend(t, alice, bob)
		waitReach(t, alice, "bob")
		_, _, err = alice.OpenDirect(ctx, "bob")
		if !errors.Is(err, client.ErrFingerprintMismatch) {
			t.Fatalf("open direct: %v, want ErrFingerprintMismatch", err)
		}
		alice.ev.until(func(e client.Event) bool {
			p, ok := e.(client.PathEvent)
			return ok && p.Peer == "bob" && errors.Is(p.Err, client.ErrFingerprintMismatch)
		})
		if p, _ := alice.PathTo("bob"); p != client.PathServer {
			t.Fatalf("path %s after a refused channel", p)
		}
		res, err := alice.Send(ctx, "bob", []byte("through the server"))
		if err != nil || res.Path != client.PathServer {
			t.Fatalf("send: %+v, %v", res, err)
		}
		bob.ev.message(res.ID)
	})
}

func mustCert(t *testing.T) *webrtc.Certificate {
	t.Helper()
	k, err := ecdsaKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := webrtc.GenerateCertificate(k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdpFingerprint is cert's fingerprint as SDP writes it.
func sdpFingerprint(c *webrtc.Certificate) string {
	fp := strings.TrimPrefix(p2p.Fingerprint(c), "sha-256 ")
	return "sha-256 " + strings.ToUpper(fp)
}
