package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/natterim/natter"
	"github.com/natterim/natter/p2p"
	"github.com/natterim/natter/seal"
	"github.com/natterim/natter/wire"
)

// keys is the Client's end-to-end state: the device's keyring and the
// contacts' verified directories.
type keys struct {
	mu    sync.Mutex
	kr    *seal.Keyring
	dirs  map[natter.UserID]*seal.Directory
	locks map[natter.UserID]*sync.Mutex // one fetch per user at a time
	// opening serialises sessionsTo per user (one prekey claim at a time).
	opening map[natter.UserID]*sync.Mutex
	opened  []openedID // opened messages whose keys go once acknowledged
	// toppingUp is set while prekeys are being published after PrekeysLow.
	toppingUp atomic.Bool
	// acked is when each inbound session (hex ID) was last acknowledged
	// (sessionack.go).
	acked map[string]time.Time
}

type openedID struct {
	seq uint64
	id  natter.MessageID
}

// Keyring returns this device's end-to-end keyring (nil before the first
// login).
func (c *Client) Keyring() *seal.Keyring {
	c.e2e.mu.Lock()
	defer c.e2e.mu.Unlock()
	return c.e2e.kr
}

// setupKeys runs after every explicit login: it makes sure the server has
// this device's bundle, its certificate (if this device holds the
// identity) and a stock of one-time prekeys.
func (c *Client) setupKeys(ctx context.Context, user natter.UserID) error {
	kr := c.Keyring()
	if kr == nil {
		return errors.New("no keyring")
	}
	if kr.User() != user || kr.Device() != c.opts.Device {
		return fmt.Errorf("keyring is %s/%s's, not %s/%s's", kr.User(), kr.Device(), user, c.opts.Device)
	}
	if c.opts.Direct && kr.DTLSFingerprint() == "" {
		if err := newDTLS(kr); err != nil {
			return err
		}
	}
	own, err := c.fetchKeys(ctx, user, nil)
	if err != nil {
		return err
	}
	pub := &wire.PublishKeys{}
	identity := own.Identity
	switch {
	case len(identity) == 0:
		if !kr.HasIdentity() {
			if err := kr.CreateIdentity(); err != nil {
				return err
			}
		}
		identity = kr.IdentityKey()
		pub.Identity = identity
	case kr.HasIdentity() && !bytes.Equal(identity, kr.IdentityKey()):
		c.log.Warn("the user's identity key on the server is not this device's: another device reset it; this device needs approval")
	}
	bundle, err := kr.Bundle()
	if err != nil {
		return err
	}
	var mine *wire.DeviceKeys
	for i := range own.Devices {
		if own.Devices[i].Device == c.opts.Device {
			mine = &own.Devices[i]
		}
	}
	if mine == nil || !bytes.Equal(mine.Bundle, bundle) {
		pub.Bundle = bundle
	}
	if kr.HasIdentity() && bytes.Equal(identity, kr.IdentityKey()) &&
		(mine == nil || !seal.VerifyCert(identity, user, c.opts.Device, kr.SignKey(), mine.Cert)) {
		cert, err := kr.Certify(c.opts.Device, kr.SignKey())
		if err != nil {
			return err
		}
		pub.Certs = []wire.DeviceCert{{Device: c.opts.Device, Cert: cert}}
	}
	left := 0
	if mine != nil && pub.Bundle == nil {
		left = mine.PrekeysLeft
	}
	if stock := c.opts.Prekeys; left < stock/2 {
		if pub.Prekeys, err = kr.NewPrekeys(stock - left); err != nil {
			return err
		}
	}
	if pub.Identity != nil || pub.Bundle != nil || pub.Certs != nil || pub.Prekeys != nil {
		if err := c.publishKeys(ctx, pub); err != nil {
			return err
		}
	}
	return nil
}

// initKeys makes sure the Client has a keyring for user once logged in,
// before the first push is handled (messages may come at once).
func (c *Client) initKeys(user natter.UserID) {
	e := &c.e2e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kr == nil && c.opts.Keys != nil {
		e.kr = c.opts.Keys
	}
	if e.kr == nil || e.kr.User() != user {
		kr, err := seal.New(user, c.opts.Device)
		if err != nil {
			c.log.Error("end-to-end keys", "err", err)
			return
		}
		e.kr = kr
	}
	if e.dirs == nil || e.kr.User() != user {
		e.dirs = make(map[natter.UserID]*seal.Directory)
	}
	if e.locks == nil {
		e.locks = make(map[natter.UserID]*sync.Mutex)
	}
}

// newDTLS gives the keyring this device's DTLS certificate.
func newDTLS(kr *seal.Keyring) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return err
	}
	pem, err := cert.PEM()
	if err != nil {
		return err
	}
	return kr.SetDTLS(pem, p2p.Fingerprint(cert))
}

func (c *Client) publishKeys(ctx context.Context, p *wire.PublishKeys) error {
	_, err := retry(ctx, c, func() (*wire.OK, error) {
		return roundTrip[wire.OK](ctx, c, "publish keys", func(ref uint64) any {
			q := *p
			q.Ref = ref
			return &q
		})
	})
	return err
}

// fetchKeys fetches user's keys; while the Client is reconnecting it waits
// for the session to come back (as a Send does).
func (c *Client) fetchKeys(ctx context.Context, user natter.UserID, claim []natter.DeviceID) (*wire.Keys, error) {
	return retry(ctx, c, func() (*wire.Keys, error) {
		return roundTrip[wire.Keys](ctx, c, "keys of "+string(user), func(ref uint64) any {
			return &wire.FetchKeys{Ref: ref, User: user, Claim: claim}
		})
	})
}

// waitSession waits until the session is up on a connection again, or
// ends.
func (c *Client) waitSession(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		closed, authed, up, endErr := c.closed, c.authed, c.cn != nil && c.cn.authed, c.endErr
		c.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case !authed && endErr != nil:
			return fmt.Errorf("%w (%w)", ErrNotLoggedIn, endErr)
		case !authed:
			return ErrNotLoggedIn
		case up:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// topUpPrekeys publishes more one-time prekeys when the server says the
// stock runs low.
func (c *Client) topUpPrekeys(ctx context.Context) {
	kr := c.Keyring()
	if kr == nil || !c.e2e.toppingUp.CompareAndSwap(false, true) {
		return // one top-up at a time: the server pushes PrekeysLow at every claim
	}
	defer c.e2e.toppingUp.Store(false)
	own, err := c.fetchKeys(ctx, kr.User(), nil)
	if err != nil {
		return
	}
	for _, d := range own.Devices {
		if d.Device == kr.Device() && d.PrekeysLeft < c.opts.Prekeys {
			pks, err := kr.NewPrekeys(c.opts.Prekeys - d.PrekeysLeft)
			if err == nil {
				err = c.publishKeys(ctx, &wire.PublishKeys{Prekeys: pks})
			}
			if err != nil {
				c.log.Warn("publish prekeys", "err", err)
			}
		}
	}
}

// directory returns user's verified keys, from the cache unless refresh.
// With a verified contact's changed identity it returns the Directory and
// an error wrapping seal.ErrKeyChanged.
func (c *Client) directory(ctx context.Context, user natter.UserID, refresh bool) (*seal.Directory, error) {
	e := &c.e2e
	e.mu.Lock()
	kr := e.kr
	if kr == nil {
		e.mu.Unlock()
		return nil, ErrNotLoggedIn
	}
	l := e.locks[user]
	if l == nil {
		l = new(sync.Mutex)
		e.locks[user] = l
	}
	e.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	e.mu.Lock()
	d := e.dirs[user]
	e.mu.Unlock()
	if d != nil && !refresh {
		return d, nil
	}
	k, err := c.fetchKeys(ctx, user, nil)
	if err != nil {
		return nil, err
	}
	return c.noteDirectory(kr, k)
}

func (c *Client) noteDirectory(kr *seal.Keyring, k *wire.Keys) (*seal.Directory, error) {
	if len(k.Identity) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoKeys, k.User)
	}
	d, err := kr.Directory(k)
	if d == nil || (err != nil && !errors.Is(err, seal.ErrKeyChanged)) {
		return nil, err
	}
	for i := range d.Devices {
		d.Devices[i].Prekey = nil // claimed prekeys are for one seal only
	}
	c.e2e.mu.Lock()
	if c.e2e.dirs != nil {
		c.e2e.dirs[k.User] = d
	}
	c.e2e.mu.Unlock()
	return d, err
}

// seal seals body for to's devices and the user's other devices.
func (c *Client) seal(ctx context.Context, id natter.MessageID, to natter.UserID, body []byte) ([]byte, error) {
	kr := c.Keyring()
	if kr == nil {
		return nil, ErrNotLoggedIn
	}
	var peers []seal.Peer
	for _, u := range []natter.UserID{kr.User(), to} {
		ps, err := c.sessionsTo(ctx, kr, u)
		if err != nil {
			return nil, err
		}
		peers = append(peers, ps...)
	}
	return kr.Seal(id, to, body, peers)
}

// sessionsTo returns the verified devices of u to seal for (the user's
// own: the others than this one), with a session open to each: it claims
// a prekey of each device that needs a new session. One call per user at
// a time, so that a send and the login's prefetch (prefetch.go) do not
// both claim.
func (c *Client) sessionsTo(ctx context.Context, kr *seal.Keyring, u natter.UserID) ([]seal.Peer, error) {
	e := &c.e2e
	e.mu.Lock()
	l := e.opening[u]
	if l == nil {
		if e.opening == nil {
			e.opening = make(map[natter.UserID]*sync.Mutex)
		}
		l = new(sync.Mutex)
		e.opening[u] = l
	}
	e.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	self := kr.User()
	d, err := c.directory(ctx, u, false)
	if err != nil {
		return nil, err
	}
	if u == self && d.Device(kr.Device()) == nil {
		return nil, ErrDeviceNotApproved
	}
	var need []natter.DeviceID
	for _, p := range d.Devices {
		if p.Bundle.Device != kr.Device() || u != self {
			if kr.NeedsSession(u, p.Bundle.Device) {
				need = append(need, p.Bundle.Device)
			}
		}
	}
	if len(need) == 0 {
		return d.Devices, nil
	}
	k, err := c.fetchKeys(ctx, u, need)
	if err != nil {
		return nil, err
	}
	withPrekeys, err := kr.Directory(k)
	if err != nil {
		return nil, err
	}
	if _, err := c.noteDirectory(kr, k); err != nil {
		return nil, err
	}
	// Open the sessions now, while the lock keeps others from claiming
	// for the same devices; Seal finds them open.
	if err := kr.OpenSessions(withPrekeys.Devices); err != nil {
		return nil, err
	}
	return withPrekeys.Devices, nil
}

// open opens a delivered message in place: its Body becomes the plaintext
// (nil if it cannot be opened, with the error returned).
func (c *Client) open(ctx context.Context, m *wire.Message) error {
	kr := c.Keyring()
	if kr == nil {
		m.Body = nil
		return ErrNotLoggedIn
	}
	o, err := kr.Open(m.ID, m.From, m.To, m.Body, func(u natter.UserID, dev natter.DeviceID) (*seal.Bundle, error) {
		return c.deviceBundle(ctx, u, dev)
	})
	if err != nil {
		m.Body = nil
		return err
	}
	m.Body, m.FromDevice = o.Body, o.FromDevice
	if o.Ack != nil {
		c.sendAck(o.Ack)
	}
	return nil
}

// deviceBundle returns the verified bundle of user's certified device dev,
// fetching user's keys again if the cached ones do not have it (a device
// just added or approved).
func (c *Client) deviceBundle(ctx context.Context, user natter.UserID, dev natter.DeviceID) (*seal.Bundle, error) {
	for _, refresh := range []bool{false, true} {
		d, err := c.directory(ctx, user, refresh)
		if d == nil {
			return nil, fmt.Errorf("%s's keys: %w", user, err)
		}
		if p := d.Device(dev); p != nil {
			return p.Bundle, nil
		}
	}
	return nil, fmt.Errorf("%w: %s/%s", errNotCertified, user, dev)
}

// errNotCertified: the device is not certified by its user's identity.
var errNotCertified = errors.New("not a certified device")

// noteOpened remembers an opened message whose keys the keyring may drop
// once its inbox entry (seq; 0 for a peer-to-peer message) is acknowledged.
func (c *Client) noteOpened(seq uint64, id natter.MessageID) {
	c.e2e.mu.Lock()
	c.e2e.opened = append(c.e2e.opened, openedID{seq, id})
	c.e2e.mu.Unlock()
}

// forgetAcked drops the keys of opened messages acknowledged up to upto.
func (c *Client) forgetAcked(upto uint64) {
	e := &c.e2e
	e.mu.Lock()
	var ids []natter.MessageID
	e.opened = slices.DeleteFunc(e.opened, func(o openedID) bool {
		if o.seq <= upto {
			ids = append(ids, o.id)
			return true
		}
		return false
	})
	kr := e.kr
	e.mu.Unlock()
	if kr != nil && len(ids) > 0 {
		if err := kr.Forget(ids...); err != nil {
			c.log.Warn("forget message keys", "err", err)
		}
	}
}

// keysChanged handles a KeysChanged push.
func (c *Client) keysChanged(k *wire.KeysChanged) {
	kr := c.Keyring()
	if kr == nil {
		return
	}
	c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
		defer cancel()
		go func() {
			select {
			case <-c.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		if k.PrekeysLow {
			c.topUpPrekeys(ctx)
			return
		}
		kr.ForgetSessions(k.User)
		d, err := c.directory(ctx, k.User, true)
		if d == nil {
			c.log.Warn("fetch changed keys", "user", k.User, "err", err)
			return
		}
		if k.User == kr.User() {
			c.shareArchiveKeyLater() // a device of the user's may have been approved
		}
		ev := KeysEvent{User: k.User, Device: k.Device, Changed: d.Changed, Verified: d.Verified, Err: err}
		for _, p := range d.Devices {
			ev.Devices = append(ev.Devices, p.Bundle.Device)
		}
		for _, b := range d.Pending {
			ev.Pending = append(ev.Pending, b.Device)
		}
		c.push(ev)
	})
}

// SafetyNumber returns the safety number of the user's and peer's identity
// keys (the same on both sides: compare it in person or over another
// channel) and whether peer's current key is marked verified.
func (c *Client) SafetyNumber(ctx context.Context, peer natter.UserID) (number string, verified bool, err error) {
	kr := c.Keyring()
	if kr == nil {
		return "", false, ErrNotLoggedIn
	}
	mine, err := c.directory(ctx, kr.User(), true)
	if mine == nil {
		return "", false, err
	}
	theirs, err := c.directory(ctx, peer, true)
	if theirs == nil {
		return "", false, err
	}
	return seal.SafetyNumber(kr.User(), mine.Identity, peer, theirs.Identity), theirs.Verified && err == nil, nil
}

// MarkVerified marks peer's identity key verified, after the user compared
// number (as SafetyNumber gave it) with peer. It fails if the keys changed
// meanwhile (the number no longer matches). Sending to a verified contact
// whose key later changes fails with seal.ErrKeyChanged until the new key
// is verified.
func (c *Client) MarkVerified(ctx context.Context, peer natter.UserID, number string) error {
	kr := c.Keyring()
	if kr == nil {
		return ErrNotLoggedIn
	}
	mine, err := c.directory(ctx, kr.User(), true)
	if mine == nil {
		return err
	}
	theirs, err := c.directory(ctx, peer, true)
	if theirs == nil {
		return err
	}
	if seal.SafetyNumber(kr.User(), mine.Identity, peer, theirs.Identity) != number {
		return fmt.Errorf("verify %s: the safety number is not the current one (keys changed?)", peer)
	}
	if err := kr.Verify(peer, theirs.Identity, true); err != nil {
		return err
	}
	_, err = c.directory(ctx, peer, true)
	return err
}

// DeviceInfo is one of the user's devices as the server lists them.
type DeviceInfo struct {
	Device   natter.DeviceID
	Approved bool // certified by the user's identity key
	This     bool // this device
	DTLS     string
}

// Devices lists the user's devices that published keys.
func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	kr := c.Keyring()
	if kr == nil {
		return nil, ErrNotLoggedIn
	}
	d, err := c.directory(ctx, kr.User(), true)
	if d == nil {
		return nil, err
	}
	var out []DeviceInfo
	for _, p := range d.Devices {
		out = append(out, DeviceInfo{Device: p.Bundle.Device, Approved: true, This: p.Bundle.Device == kr.Device(), DTLS: p.Bundle.DTLS})
	}
	for _, b := range d.Pending {
		out = append(out, DeviceInfo{Device: b.Device, This: b.Device == kr.Device(), DTLS: b.DTLS})
	}
	slices.SortFunc(out, func(a, b DeviceInfo) int { return strings.Compare(string(a.Device), string(b.Device)) })
	return out, nil
}

// ApproveDevice certifies another device of the user with the identity key
// this device holds, so that contacts seal for it and trust what it seals.
// Check first, on the new device, that it is the one being approved.
func (c *Client) ApproveDevice(ctx context.Context, dev natter.DeviceID) error {
	kr := c.Keyring()
	if kr == nil {
		return ErrNotLoggedIn
	}
	if !kr.HasIdentity() {
		return errors.New("approve: this device does not hold the identity key; approve from the device that does")
	}
	d, err := c.directory(ctx, kr.User(), true)
	if d == nil {
		return err
	}
	for _, b := range d.Pending {
		if b.Device == dev {
			cert, err := kr.Certify(dev, b.SignKey)
			if err != nil {
				return err
			}
			if err := c.publishKeys(ctx, &wire.PublishKeys{Certs: []wire.DeviceCert{{Device: dev, Cert: cert}}}); err != nil {
				return err
			}
			if _, err = c.directory(ctx, kr.User(), true); err != nil {
				return err
			}
			// The new device can read the archive, if it is on.
			if _, err := c.archiveSync(ctx); err != nil && !errors.Is(err, ErrArchiveKeyPending) {
				c.log.Warn("share the archive key", "err", err)
			}
			return nil
		}
	}
	if d.Device(dev) != nil {
		return nil // already approved
	}
	return fmt.Errorf("approve %s: no such device awaiting approval", dev)
}

// ResetIdentity gives the user a new identity key, held by this device, for
// when no device holding the old one is left. Every other device of the user
// must be approved again, and contacts are warned that the key changed
// (those who verified the old key send nothing until they verify again).
func (c *Client) ResetIdentity(ctx context.Context) error {
	kr := c.Keyring()
	if kr == nil {
		return ErrNotLoggedIn
	}
	if err := kr.CreateIdentity(); err != nil {
		return err
	}
	cert, err := kr.Certify(kr.Device(), kr.SignKey())
	if err != nil {
		return err
	}
	if err := c.publishKeys(ctx, &wire.PublishKeys{Identity: kr.IdentityKey(), Reset: true,
		Certs: []wire.DeviceCert{{Device: kr.Device(), Cert: cert}}}); err != nil {
		return err
	}
	_, err = c.directory(ctx, kr.User(), true)
	return err
}
