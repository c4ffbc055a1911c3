//go:build js

package webapp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall/js"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// Version is the browser client's name in Hello.
const Version = "natter-web/0.1"

// App is the browser client: one user's session in this page.
type App struct {
	s      store
	server string // natterd's wss:// address
	log    *slog.Logger
	emitMu sync.Mutex
	emit   js.Value // the page's onEvent

	mu       sync.Mutex
	c        *client.Client
	user     natter.UserID
	device   natter.DeviceID
	hist     history
	approved bool
	online   bool
	status   natter.Status
	text     string
	contacts map[natter.UserID]*contact
	// receipts holds each contact's latest receipt per state, so that a
	// message whose record is written after its receipt arrived (a direct
	// send is acknowledged, and receipted, before Send returns) still
	// moves: see sent.
	receipts map[natter.UserID]map[natter.ReceiptState]client.ReceiptEvent
	chunks   idbChunks
}

// contact is one entry of the contact list, with this browser's count of
// unread messages.
type contact struct {
	wire.Contact
	unread int
}

// session is what "kv"/"session" keeps: the logged-in user of this
// browser.
type session struct {
	User   natter.UserID   `json:"user"`
	Device natter.DeviceID `json:"device"`
	Token  string          `json:"token"`
}

// New returns the app for the page at origin (https://host:port),
// keeping its data through idb (web/dist/idb.js).
func New(server string, idb js.Value, log *slog.Logger) *App {
	return &App{s: store{idb: idb}, server: server, log: log, chunks: idbChunks{s: store{idb: idb}, max: 1 << 30}}
}

// send hands an event to the page.
func (a *App) send(typ string, fields map[string]any) {
	fields["type"] = typ
	a.emitMu.Lock()
	defer a.emitMu.Unlock()
	if a.emit.Type() == js.TypeFunction {
		a.emit.Invoke(js.ValueOf(fields))
	}
}

// start opens the storage and, if a session is stored, resumes it in the
// background.
func (a *App) start(ctx context.Context, onEvent js.Value) (any, error) {
	a.emitMu.Lock()
	a.emit = onEvent
	a.emitMu.Unlock()
	if err := a.s.open(); err != nil {
		return nil, err
	}
	v, ok, err := a.s.get("kv", "session")
	if err != nil || !ok {
		return nil, err
	}
	var sess session
	if err := json.Unmarshal([]byte(v), &sess); err != nil || sess.Token == "" {
		return nil, nil
	}
	// The stored session, its keys and history, at once: the page opens
	// even when natterd cannot be reached (offline, from the service
	// worker's cache), and connects when it can.
	kr, err := a.setUser(sess.User, sess.Device)
	if err != nil {
		return nil, err
	}
	go a.resume(sess.User, kr, sess.Token)
	return a.meJS(), nil
}

// resume connects and resumes the stored session, trying again with
// back-off while natterd cannot be reached (the page shows the history
// meanwhile). It gives up when natterd refuses the session, or when the
// user logged out or in as someone else meanwhile.
func (a *App) resume(user natter.UserID, kr *seal.Keyring, token string) {
	wait := 500 * time.Millisecond
	for {
		a.mu.Lock()
		current := a.user == user && a.c == nil
		a.mu.Unlock()
		if !current {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := a.dial(user, kr)
		var sess client.Session
		if err == nil {
			if sess, err = c.Resume(ctx, token); err != nil {
				a.drop(c)
			}
		}
		cancel()
		if err == nil {
			a.loggedIn(c, sess)
			return
		}
		var we *wire.Err
		if errors.As(err, &we) && we.Code != wire.CodeShutdown && we.Code != wire.CodeUnavailable {
			// Refused: the session is over.
			a.log.Info("stored session refused", "err", err)
			a.forget()
			a.send("conn", map[string]any{"up": false, "final": true, "error": err.Error()})
			return
		}
		a.send("conn", map[string]any{"up": false, "final": false, "error": err.Error()})
		time.Sleep(wait)
		wait = min(2*wait, 30*time.Second)
	}
}

// setUser makes user's device dev the app's, with its keys and history,
// without the network.
func (a *App) setUser(user natter.UserID, dev natter.DeviceID) (*seal.Keyring, error) {
	kr, err := a.keyring(user, dev)
	if err != nil {
		return nil, err
	}
	approved := false
	if v, ok, _ := a.s.get("kv", "approved/"+string(user)+"/"+string(dev)); ok && v == "yes" {
		approved = true
	}
	contacts := a.loadContacts(user)
	a.mu.Lock()
	old := a.c
	a.c, a.user, a.device, a.online = nil, user, dev, false
	a.approved = approved
	a.hist = history{s: a.s, owner: string(user)}
	a.contacts = contacts
	a.receipts = map[natter.UserID]map[natter.ReceiptState]client.ReceiptEvent{}
	a.mu.Unlock()
	for peer := range contacts {
		a.countUnread(peer, false)
	}
	if old != nil {
		old.Close()
	}
	return kr, nil
}

// dial connects a Client for the app's user, with the keys kr, and makes
// it the app's.
func (a *App) dial(user natter.UserID, kr *seal.Keyring) (*client.Client, error) {
	c, err := client.Dial(context.Background(), client.Options{
		Addr:                  a.server,
		Device:                kr.Device(),
		ClientName:            Version,
		AutoDeliveredReceipts: true,
		Direct:                true,
		Keys:                  kr,
		Chunks:                a.chunks,
		Logger:                a.log,
	})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.user != user || a.c != nil {
		a.mu.Unlock()
		c.Close()
		return nil, errors.New("the session changed meanwhile")
	}
	a.c = c
	a.mu.Unlock()
	go a.pump(c)
	return c, nil
}

// drop closes c and forgets it if it is still the app's.
func (a *App) drop(c *client.Client) {
	a.mu.Lock()
	if a.c == c {
		a.c = nil
	}
	a.mu.Unlock()
	c.Close()
}

// keyring loads user's keys on this device from the storage, or makes
// them; they are written back whenever they change.
func (a *App) keyring(user natter.UserID, dev natter.DeviceID) (*seal.Keyring, error) {
	key := "keys/" + string(user)
	var kr *seal.Keyring
	v, ok, err := a.s.get("kv", key)
	if err != nil {
		return nil, err
	}
	if ok {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("stored keys: %w", err)
		}
		if kr, err = seal.Load(b); err != nil {
			return nil, fmt.Errorf("stored keys: %w", err)
		}
		if kr.User() != user || kr.Device() != dev {
			kr = nil // another device's: make new ones
		}
	}
	if kr == nil {
		if kr, err = seal.New(user, dev); err != nil {
			return nil, err
		}
	}
	kr.SetPersist(func(b []byte) error {
		return a.s.put("kv", base64.StdEncoding.EncodeToString(b), key)
	})
	// The browser's own DTLS certificate (natter.js makes it once, keeps
	// it, and gives it to every RTCPeerConnection) is the one the
	// device's bundle names, so contacts can tell its channels are its.
	if fp := js.Global().Get("natterDTLS"); fp.Type() == js.TypeString && fp.String() != kr.DTLSFingerprint() {
		if err := kr.SetDTLS("", fp.String()); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// deviceFor returns this browser's device ID for user, made once.
func (a *App) deviceFor(user natter.UserID) (natter.DeviceID, error) {
	v, ok, err := a.s.get("kv", "device/"+string(user))
	if err != nil {
		return "", err
	}
	if ok {
		return natter.DeviceID(v), nil
	}
	dev := natter.NewDeviceID()
	return dev, a.s.put("kv", string(dev), "device/"+string(user))
}

// auth signs up or logs in.
func (a *App) auth(ctx context.Context, user, password string, signup bool) (any, error) {
	if err := natter.ValidateUserID(user); err != nil {
		return nil, err
	}
	u := natter.UserID(user)
	dev, err := a.deviceFor(u)
	if err != nil {
		return nil, err
	}
	kr, err := a.setUser(u, dev)
	if err != nil {
		return nil, err
	}
	c, err := a.dial(u, kr)
	if err != nil {
		return nil, err
	}
	var sess client.Session
	if signup {
		sess, err = c.Signup(ctx, u, password)
	} else {
		sess, err = c.Login(ctx, u, password)
	}
	if err != nil {
		a.drop(c)
		a.mu.Lock()
		a.user = ""
		a.mu.Unlock()
		return nil, err
	}
	b, _ := json.Marshal(session{User: u, Device: dev, Token: sess.Token})
	if err := a.s.put("kv", string(b), "session"); err != nil {
		return nil, err
	}
	a.loggedIn(c, sess)
	return a.meJS(), nil
}

// loggedIn runs once a session started: it learns whether this device is
// approved and restores the status the user set.
func (a *App) loggedIn(c *client.Client, sess client.Session) {
	a.mu.Lock()
	a.online = true
	a.mu.Unlock()
	a.checkApproval(c)
	if v, ok, _ := a.s.get("kv", "status/"+string(sess.User)); ok {
		var st struct {
			Status natter.Status `json:"status"`
			Text   string        `json:"text"`
		}
		if json.Unmarshal([]byte(v), &st) == nil && st.Status != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if c.SetPresence(ctx, st.Status, st.Text) == nil {
				a.mu.Lock()
				a.status, a.text = st.Status, st.Text
				a.mu.Unlock()
			}
			cancel()
		}
	}
	a.send("conn", map[string]any{"up": true, "final": false, "error": ""})
}

// checkApproval asks the directory whether this device is certified by
// the user's identity, and tells the page when that changes.
func (a *App) checkApproval(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	devs, err := c.Devices(ctx)
	if err != nil {
		a.log.Warn("devices", "err", err)
		return
	}
	approved := false
	for _, d := range devs {
		if d.This {
			approved = d.Approved
		}
	}
	a.mu.Lock()
	changed := approved != a.approved
	a.approved = approved
	a.mu.Unlock()
	if changed {
		if err := a.s.put("kv", map[bool]string{true: "yes", false: "no"}[approved], "approved/"+string(a.user)+"/"+string(a.device)); err != nil {
			a.log.Warn("keep the approval", "err", err)
		}
		a.send("approval", map[string]any{"approved": approved})
	}
}

// forget drops the stored session (the keys and the history stay).
func (a *App) forget() {
	if err := a.s.write(op{store: "kv", key: []any{"session"}, del: true}); err != nil {
		a.log.Warn("forget the session", "err", err)
	}
	a.mu.Lock()
	a.online = false
	a.mu.Unlock()
}

func (a *App) logout(ctx context.Context) (any, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	lerr := c.Logout(ctx)
	c.Close()
	a.forget()
	a.mu.Lock()
	a.c, a.user, a.approved, a.status, a.text = nil, "", false, "", ""
	a.mu.Unlock()
	if lerr != nil && !errors.Is(lerr, client.ErrConnLost) {
		return nil, lerr
	}
	return nil, nil
}

// errOffline: the session is stored but not connected now.
var errOffline = errors.New("not connected to the server (trying again)")

// client returns the session's Client, if it is connected.
func (a *App) client() (*client.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.user == "":
		return nil, client.ErrNotLoggedIn
	case a.c == nil:
		return nil, errOffline
	}
	return a.c, nil
}

func (a *App) meJS() map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.user == "" {
		return nil
	}
	status := string(a.status)
	if status == "" {
		status = string(natter.StatusOnline)
	}
	return map[string]any{"user": string(a.user), "device": string(a.device), "status": status,
		"text": a.text, "approved": a.approved, "online": a.online}
}
