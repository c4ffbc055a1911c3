package test

import (
	"strings"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/internal/server"
	"github.com/natterim/natter/internal/servertest"
	"github.com/natterim/natter/wire"
)

// These tests hold natterd to the store's bounds (docs/delivery.md, "What
// is kept, and for how long") through real sockets: a user removes a
// device, a new device over the cap is refused, an idle device is retired,
// and the inbox is trimmed of what every device acknowledged and nothing
// else.

// waitMetric polls natterd's metric until it reaches at least want, or
// fails t after the deadline. The sweep runs on its own ticker: its
// counters are the only sign that it ran.
func waitMetric(t *testing.T, in *servertest.Instance, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := in.Metric(t, name, labels...)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after 20s, want %v", name, labels, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRemoveDevice: alice removes her second device from her first. The
// removed device's connection gets Bye device_removed and is closed, its
// token no longer resumes, its keys are gone from the directory, and alice's
// first device and her contact bob are told (KeysChanged). Removing a device
// that is not there is answered OK; a malformed name is refused.
func TestRemoveDevice(t *testing.T) {
	in := servertest.Start(t)
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	b := signup(t, in, "bob")
	befriend(t, a1, b)
	a2.call(wire.PublishKeys{Bundle: blob("a2 bundle"), Prekeys: prekeys("a2", 0, 3)}, wire.TOK)
	for _, r := range []*raw{a1, b} {
		r.keysChanged()
	}
	// a2 acknowledges a message, so that its connection has a cursor to
	// write when it is closed: the write finds the device gone.
	b.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "alice", Body: []byte("hi")}, wire.TSendAck)
	m := a2.expect(wire.TMsg).(*wire.Msg)
	a2.send(wire.Ack{Upto: m.Seq})
	a2.call(wire.Ping{}, wire.TPong)

	a1.call(wire.RemoveDevice{Device: a2.device}, wire.TOK)
	bye := a2.closed(10 * time.Second)
	if bye == nil || bye.Code != wire.CodeDeviceRemoved {
		t.Fatalf("removed device's Bye = %+v, want code %s", bye, wire.CodeDeviceRemoved)
	}
	for _, r := range []*raw{a1, b} {
		if got := r.keysChanged(); *got != (wire.KeysChanged{User: "alice", Device: a2.device}) {
			t.Fatalf("%s got %+v, want KeysChanged for alice's removed device", r.user, *got)
		}
	}
	for _, d := range b.fetch("alice").Devices {
		if d.Device == a2.device {
			t.Fatalf("alice's keys still list the removed device: %+v", d)
		}
	}
	r := hello(t, in)
	if _, err := r.try(wire.Resume{Token: a2.token}, wire.TAuthed); errCode(err) != wire.CodeSessionExpired {
		t.Fatalf("Resume with the removed device's token: %v, want %s", err, wire.CodeSessionExpired)
	}
	if _, err := a1.try(wire.RemoveDevice{Device: "never-there"}, wire.TOK); errCode(err) != wire.CodeBadRequest {
		t.Fatalf("RemoveDevice of a device alice never had: %v, want %s (no such device)", err, wire.CodeBadRequest)
	}
	if _, err := a1.try(wire.RemoveDevice{Device: ""}, wire.TOK); err == nil {
		t.Fatal("RemoveDevice with an empty device name answered OK")
	}
	// The user's remaining device works on.
	b.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "alice", Body: []byte("still there?")}, wire.TSendAck)
	a1.expect(wire.TMsg)
	if n := in.Metric(t, "natter_devices_removed_total", `reason="user"`); n != 1 {
		t.Fatalf("natter_devices_removed_total{reason=user} = %v, want 1", n)
	}
}

// TestDeviceCap: with --max-devices 2, a third device is refused at login
// with too_many_devices (a message that names the way out), the two others
// still log in, and removing one makes room.
func TestDeviceCap(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.Bounds.MaxDevices = 2 })
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	r := hello(t, in)
	third := natter.NewDeviceID()
	_, err := r.try(wire.Login{User: "alice", Password: "password-alice", Device: third}, wire.TAuthed)
	if errCode(err) != wire.CodeTooManyDevices || !strings.Contains(err.Error(), "natter devices remove") {
		t.Fatalf("login of a third device: %v, want %s naming natter devices remove", err, wire.CodeTooManyDevices)
	}
	// Known devices are never refused.
	login(t, in, "alice", a2.device).drainLogin()
	a1.call(wire.RemoveDevice{Device: a2.device}, wire.TOK)
	login(t, in, "alice", third).drainLogin()
}

// TestDeviceRetired: with --device-retire 1s, a device that logged out is
// retired by the sweep (its keys gone, its token refused, alice's other
// device told), while a device that stays connected is not, however long
// ago it logged in.
func TestDeviceRetired(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) {
		c.Bounds.DeviceRetire = time.Second
		c.Bounds.TrimInterval = 50 * time.Millisecond
	})
	a1 := signup(t, in, "alice")
	a2 := login(t, in, "alice", "")
	a2.drainLogin()
	a2.call(wire.PublishKeys{Bundle: blob("a2 bundle")}, wire.TOK)
	a1.keysChanged()
	a2.c.Close()

	waitMetric(t, in, 1, "natter_devices_removed_total", `reason="retired"`)
	if got := a1.keysChanged(); *got != (wire.KeysChanged{User: "alice", Device: a2.device}) {
		t.Fatalf("alice's first device got %+v, want KeysChanged for the retired one", *got)
	}
	if k := a1.fetch("alice"); len(k.Devices) != 0 {
		t.Fatalf("alice's keys after retirement = %+v, want none (a1 published none)", k.Devices)
	}
	r := hello(t, in)
	if _, err := r.try(wire.Resume{Token: a2.token}, wire.TAuthed); errCode(err) != wire.CodeSessionExpired {
		t.Fatalf("Resume with the retired device's token: %v, want %s", err, wire.CodeSessionExpired)
	}
	// a1 logged in over a second ago and is still connected: seen, kept.
	a1.call(wire.Ping{}, wire.TPong)
	if n := in.Metric(t, "natter_devices_removed_total", `reason="retired"`); n != 1 {
		t.Fatalf("natter_devices_removed_total{reason=retired} = %v, want 1 (the connected device is kept)", n)
	}
}

// inboxMessages counts the messages in Inbox frames.
func inboxMessages(frames []*wire.Inbox) (n int, through uint64) {
	for _, f := range frames {
		for _, g := range f.Groups {
			n += len(g.Messages)
		}
		through = max(through, f.Through)
	}
	return n, through
}

// TestInboxTrimmed: the sweep deletes what every device of a user
// acknowledged and nothing else. bob sends alice five messages; alice's
// phone acknowledges them, her laptop (offline) does not: her inbox keeps
// them all and the laptop gets them at its next login; once the laptop
// acknowledged them too they are trimmed, and a new device gets nothing;
// bob, whose device acknowledged nothing, keeps his copies.
func TestInboxTrimmed(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) { c.Bounds.TrimInterval = 50 * time.Millisecond })
	phone := signup(t, in, "alice")
	laptop := login(t, in, "alice", "")
	laptop.drainLogin()
	laptop.c.Close() // offline from now on, at cursor 0
	b := signup(t, in, "bob")
	c := signup(t, in, "carol")
	befriend(t, phone, b)
	const n = 5
	for i := range n {
		b.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "alice", Body: []byte{byte(i)}}, wire.TSendAck)
	}
	var last uint64
	for range n {
		last = phone.expect(wire.TMsg).(*wire.Msg).Seq
	}
	phone.send(wire.Ack{Upto: last})
	phone.call(wire.Logout{}, wire.TOK) // writes the phone's cursor
	// carol's one device acknowledges a message after that: once her
	// entry is trimmed, a sweep has run since the phone's cursor was
	// written.
	befriend(t, c, b)
	b.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "carol", Body: []byte("hi carol")}, wire.TSendAck)
	c.send(wire.Ack{Upto: c.expect(wire.TMsg).(*wire.Msg).Seq})
	c.call(wire.Logout{}, wire.TOK)
	b.call(wire.Logout{}, wire.TOK) // bob acknowledged nothing: his entries stay
	waitMetric(t, in, 1, "natter_inbox_trimmed_total")
	if got := in.Metric(t, "natter_inbox_trimmed_total"); got != 1 {
		t.Fatalf("natter_inbox_trimmed_total = %v, want 1 (carol's entry only)", got)
	}

	laptop = login(t, in, "alice", laptop.device)
	_, frames := laptop.drainLogin()
	if got, _ := inboxMessages(frames); got != n {
		t.Fatalf("the laptop got %d messages at login, want %d (its phone's acknowledgement trimmed nothing)", got, n)
	}
	laptop.send(wire.Ack{Upto: last})
	laptop.call(wire.Logout{}, wire.TOK)
	waitMetric(t, in, 1+n, "natter_inbox_trimmed_total")

	tablet := login(t, in, "alice", "")
	_, frames = tablet.drainLogin()
	if got, _ := inboxMessages(frames); got != 0 {
		t.Fatalf("a new device got %d messages, want none (all were acknowledged by alice's devices)", got)
	}
	// bob's devices acknowledged nothing: his inbox still holds his sends.
	b2 := login(t, in, "bob", "")
	_, frames = b2.drainLogin()
	if got, _ := inboxMessages(frames); got != n+1 {
		t.Fatalf("bob's new device got %d messages, want %d (his sends to alice and carol)", got, n+1)
	}
}

// TestInboxExpired: with --retention 1ms, a message alice's device never
// acknowledged is deleted by the sweep, counted in
// natter_inbox_expired_total and logged with her name and count; her device
// then finds her inbox empty.
func TestInboxExpired(t *testing.T) {
	in := servertest.Start(t, func(c *server.Config) {
		c.Bounds.Retention = time.Millisecond
		c.Bounds.TrimInterval = 50 * time.Millisecond
	})
	a := signup(t, in, "alice")
	b := signup(t, in, "bob")
	befriend(t, a, b)
	a.call(wire.Logout{}, wire.TOK)
	a = login(t, in, "alice", a.device) // a new session of the same device
	a.drainLogin()
	a.c.Close()
	b.call(wire.Send{ID: natter.NewMessageID(time.Now()), To: "alice", Body: []byte("too late")}, wire.TSendAck)
	// alice's entry and bob's own: neither was acknowledged.
	waitMetric(t, in, 2, "natter_inbox_expired_total")
	found := false
	for _, line := range in.Log().Lines() {
		if strings.Contains(line, `msg="inbox entries expired unacknowledged"`) && strings.Contains(line, "user=alice") && strings.Contains(line, "count=1") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no Info line says alice's entry expired; log:\n%s", strings.Join(in.Log().Lines(), "\n"))
	}
	a = login(t, in, "alice", a.device)
	_, frames := a.drainLogin()
	if got, _ := inboxMessages(frames); got != 0 {
		t.Fatalf("alice's device got %d messages after they expired, want none", got)
	}
}
