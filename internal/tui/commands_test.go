package tui

import (
	"testing"

	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

func TestContactCommands(t *testing.T) {
	for _, tc := range []struct {
		line, call, notice string
	}{
		{"/add zoe", "Add zoe", "asked zoe to be your contact"},
		{"/accept gina", "Accept gina", "gina is your contact now"},
		{"/refuse gina", "Refuse gina", "refused gina's request"},
		{"/remove bob", "Remove bob", "removed bob"},
		{"/block bob", "Block bob", "blocked bob"},
		{"/unblock ivan", "Unblock ivan", "unblocked ivan"},
		{"/status away out for lunch", "SetPresence away out for lunch", "status: away"},
		{"/status busy", "SetPresence busy ", "status: busy"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			h := newHarness(t, 100, 24)
			h.event(client.ContactsEvent{Contacts: someContacts()})
			h.keys(tc.line + "<enter>")
			if !h.b.has(tc.call) {
				t.Fatalf("no %q call: %v", tc.call, h.b.called())
			}
			h.contains(tc.notice)
		})
	}
}

func TestCommandErrors(t *testing.T) {
	for _, tc := range []struct{ line, notice string }{
		{"/frobnicate", "/frobnicate is not a command: /help lists them"},
		{"/status sleeping", "usage: /status online|away|busy [TEXT]"},
		{"/add Not A Name!", "/add:"},
		{"/send notes.txt", "/send sends to the conversation on screen"},
		{"/search", "usage: /search TEXT"},
		{"/verify confirm bob", "first compare the safety number: /verify bob"},
		{"/add alice", "that is you"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			h := newHarness(t, 100, 24)
			h.keys(tc.line + "<enter>")
			h.contains(tc.notice)
		})
	}
}

func TestStatusShowsInTopBar(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.keys("/status away back at 3<enter>")
	h.contains("natter  ◐ alice away “back at 3”")
}

func TestCompletion(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	for _, tc := range []struct{ typed, tabs, want string }{
		{"/acc", "<tab>", "/accept "},
		{"/accept g", "<tab>", "/accept gina "},
		{"/status a", "<tab>", "/status away "},
		{"/verify c", "<tab>", "/verify carol "}, // confirm comes first, then carol
		{"/add ", "<tab><tab>", "/add carol "},
		{"b", "<tab>", "bob: "},
	} {
		h.a.input.Reset()
		h.a.cmdMode = false
		h.a.focus = focusMain
		h.keys(tc.typed + tc.tabs)
		if got := h.a.input.Value(); got != tc.want {
			t.Errorf("%q then %s: %q, want %q", tc.typed, tc.tabs, got, tc.want)
		}
	}
}

func TestSearchOpensAtTheMessage(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.l.fill("bob", 1000)
	h.event(client.ContactsEvent{Contacts: someContacts()})
	h.keys("/search number 17 from<enter>")
	h.contains(`Search "number 17 from": 1 message`, "bob: message [number 17 from] the history")
	h.keys("<enter>")
	h.contains("● bob online", "message number 17 from the history")
	if h.l.pages != 5 { // 1000 messages, 200 a page
		t.Errorf("read %d pages to find the message, want 5", h.l.pages)
	}
	if got := h.a.activeConv().mark; got != "h000017" {
		t.Errorf("marked %q", got)
	}
}

func TestSendFileShowsProgressAndPath(t *testing.T) {
	h := chatWith(t, 100, 24, "bob")
	h.b.path = client.PathDirect
	h.keys("/send ~/notes.txt<enter>")
	if !h.b.has("SendFile bob") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.contains("[file] notes.txt (1.0 KiB) ✓✓ delivered", "the file went peer to peer (direct)")
}

func TestTransferLine(t *testing.T) {
	h := newHarness(t, 100, 24)
	got := stripANSI(transferLine(&transfer{name: "video.mp4", done: 512, total: 1024}, "sending", 60, h.a))
	want := "sending video.mp4 ████████░░░░░░░░  50% 512 bytes of 1.0 KiB"
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

func TestFilesFetchesWhatArrived(t *testing.T) {
	h := newHarness(t, 100, 24)
	f := &client.FileInfo{Name: "photo.jpg", Size: 2048}
	h.event(client.MessageEvent{Message: msgFrom("bob", 1, "x", t0), File: f})
	// The SDK sets File and leaves the manifest as the body; the UI
	// reads it with client.FileOf, so here the arrival is noted by hand.
	h.a.arrived = append(h.a.arrived, &arrivedFile{id: "bob-9", from: "bob", at: t0, file: *f})
	h.keys("/files<enter>")
	if !h.b.has("FetchFile photo.jpg /home/alice/files") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.contains("Files (saved in /home/alice/files)", "14:30 bob: photo.jpg (2.0 KiB)", "→ /home/alice/files/photo.jpg")
}

func TestDevicesAndApprove(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.b.devices = []client.DeviceInfo{{Device: "dev1", Approved: true, This: true}, {Device: "dev2"}}
	h.keys("/devices<enter>")
	h.contains("Your devices", "dev1 (this device): approved", "dev2: awaiting approval")
	h.keys("<enter>")
	if !h.b.has("ApproveDevice dev2") {
		t.Fatalf("calls: %v", h.b.called())
	}
	h.contains("approved device dev2")
}

func TestHelpAndEscape(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.keys("/help<enter>")
	h.contains("natter: commands and keys", "/verify [confirm] [NAME]", "/status STATUS [TEXT]")
	h.keys("<esc>")
	h.lacks("commands and keys")
}

func TestLogout(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.keys("/logout<enter>")
	if !h.b.has("Logout") {
		t.Fatalf("calls: %v", h.b.called())
	}
	if e := h.ends(); len(e) != 1 || !e[0] {
		t.Fatalf("End calls %v, want one with loggedOut", e)
	}
	h.contains("logged out alice", "password", "server")
	if h.a.Session() != nil {
		t.Fatal("a session after /logout")
	}
}

func TestRequestNotice(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.event(client.ContactEvent{Contact: wire.Contact{User: "zoe", State: "pending_in"}})
	h.contains("zoe wants to be your contact: /accept zoe or /refuse zoe")
}
