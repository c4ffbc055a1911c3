package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// TestPrefetchKeys: after an explicit login the SDK fetches its approved
// contacts' keys and claims their devices' prekeys in the background (not
// a pending contact's), so that the first send to them goes at once; if
// that fails, the first send fetches them as before. Quiet Clients do not
// prefetch.
func TestPrefetchKeys(t *testing.T) {
	tests := []struct {
		name  string
		quiet bool
		fail  bool // the server refuses the prefetch's claim
	}{
		{name: "prefetched"},
		{name: "prefetch fails", fail: true},
		{name: "quiet", quiet: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t)
			ctx := t.Context()
			o := fs.opts("a1")
			o.Quiet = tt.quiet
			c, err := client.Dial(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			fc := fs.accept()
			fc.keys = newFakeDir()
			_, carolKeys := newPeerKeys(t, "carol", "c1")
			_, daveKeys := newPeerKeys(t, "dave", "d1")
			fc.keys.users["carol"], fc.keys.users["dave"] = carolKeys, daveKeys

			errc := make(chan error, 1)
			go func() {
				_, err := c.Login(ctx, "alice", "password")
				errc <- err
			}()
			l := expect[wire.Login](fc)
			fc.user, fc.dev = "alice", "a1"
			fc.write(
				wire.Authed{Ref: l.Ref, User: "alice", Device: "a1", Token: "tok", Expires: time.Now().Add(time.Hour)},
				wire.Contacts{Contacts: []wire.Contact{{User: "carol", State: natter.ContactApproved}, {User: "dave", State: natter.ContactPendingIn}}},
				wire.Inbox{Done: true},
			)
			fc.keySetup()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}

			// next returns the next frame that is not about keys (it
			// serves fetches without a claim and answers claims with ans),
			// or nil after a claim if untilClaim.
			var claimed []natter.UserID
			next := func(ans func(*wire.FetchKeys), untilClaim bool) any {
				t.Helper()
				for {
					v := fc.readAny()
					switch f := v.(type) {
					case *wire.FetchKeys:
						if f.User == "dave" {
							t.Fatal("keys fetched for a contact not approved")
						}
						if len(f.Claim) == 0 {
							fc.serveKeys(f)
							continue
						}
						claimed = append(claimed, f.User)
						ans(f)
						if untilClaim {
							return nil
						}
						continue
					case *wire.Ack, *wire.ArchiveGet:
						fc.serveKeys(v)
						continue
					case *wire.Ping:
						fc.write(wire.Pong{Ref: f.Ref})
						continue
					}
					return v
				}
			}
			serve := func(f *wire.FetchKeys) { fc.serveKeys(f) }
			refuse := func(f *wire.FetchKeys) {
				fc.write(wire.Error{Ref: f.Ref, Code: wire.CodeInternal, Message: "no"})
			}

			sent := make(chan error, 1)
			if !tt.quiet {
				// The prefetch claims carol's prekey before any send.
				ans := serve
				if tt.fail {
					ans = refuse
				}
				if v := next(ans, true); v != nil {
					t.Fatalf("got %T %+v before the prefetch's claim", v, v)
				}
			}
			go func() {
				_, err := c.Send(ctx, "carol", []byte("hi"))
				sent <- err
			}()
			claimsBefore := len(claimed)
			s, ok := next(serve, false).(*wire.Send)
			if !ok {
				t.Fatalf("got %T, want the Send", s)
			}
			fc.write(wire.SendAck{Ref: s.Ref, ID: s.ID, ConvSeq: 1, SentAt: time.Now(), Online: true})
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			lazy := len(claimed) - claimsBefore
			if want := map[bool]int{true: 1, false: 0}[tt.fail || tt.quiet]; lazy != want {
				t.Fatalf("the send claimed %d times (claims %v), want %d", lazy, claimed, want)
			}
			if slices.Contains(claimed, "alice") {
				t.Fatalf("claimed for alice, who has no other device: %v", claimed)
			}
		})
	}
}
