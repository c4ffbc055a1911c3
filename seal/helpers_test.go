package seal

import (
	"testing"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// world is a few users and devices with real keys, and the directory a
// server would hand out (built from what the devices publish).
type world struct {
	t       *testing.T
	devices map[natter.UserID][]*Keyring
	prekeys map[devRef][][]byte
}

func newWorld(t *testing.T) *world {
	return &world{t: t, devices: map[natter.UserID][]*Keyring{}, prekeys: map[devRef][][]byte{}}
}

// add makes a device; the user's first device creates the identity and
// certifies itself, later ones are certified by the first.
func (w *world) add(user natter.UserID, dev natter.DeviceID) *Keyring {
	w.t.Helper()
	k, err := New(user, dev)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(w.devices[user]) == 0 {
		if err := k.CreateIdentity(); err != nil {
			w.t.Fatal(err)
		}
	}
	w.devices[user] = append(w.devices[user], k)
	pks, err := k.NewPrekeys(5)
	if err != nil {
		w.t.Fatal(err)
	}
	w.prekeys[devRef{user, dev}] = pks
	return k
}

func (w *world) identity(user natter.UserID) *Keyring { return w.devices[user][0] }

// keys is what FetchKeys would answer for user, claiming a prekey of every
// device if claim.
func (w *world) keys(user natter.UserID, claim bool) *wire.Keys {
	w.t.Helper()
	out := &wire.Keys{User: user, Identity: w.identity(user).IdentityKey()}
	for _, k := range w.devices[user] {
		b, err := k.Bundle()
		if err != nil {
			w.t.Fatal(err)
		}
		cert, err := w.identity(user).Certify(k.Device(), k.SignKey())
		if err != nil {
			w.t.Fatal(err)
		}
		dk := wire.DeviceKeys{Device: k.Device(), Bundle: b, Cert: cert}
		ref := devRef{user, k.Device()}
		if claim && len(w.prekeys[ref]) > 0 {
			dk.Prekey, w.prekeys[ref] = w.prekeys[ref][0], w.prekeys[ref][1:]
		}
		out.Devices = append(out.Devices, dk)
	}
	return out
}

// peers is whom from seals a message to `to` for: to's devices and from's
// other devices, as verified by from's keyring.
func (w *world) peers(from *Keyring, to natter.UserID) []Peer {
	w.t.Helper()
	var ps []Peer
	for _, u := range []natter.UserID{to, from.User()} {
		d, err := from.Directory(w.keys(u, true))
		if err != nil {
			w.t.Fatal(err)
		}
		ps = append(ps, d.Devices...)
	}
	return ps
}

// lookup returns the bundle resolver k uses to open messages.
func (w *world) lookup(k *Keyring) func(natter.UserID, natter.DeviceID) (*Bundle, error) {
	return func(u natter.UserID, dev natter.DeviceID) (*Bundle, error) {
		d, err := k.Directory(w.keys(u, false))
		if err != nil {
			return nil, err
		}
		if p := d.Device(dev); p != nil {
			return p.Bundle, nil
		}
		return nil, ErrBadBundle
	}
}

func (w *world) seal(from *Keyring, to natter.UserID, body string) (natter.MessageID, []byte) {
	w.t.Helper()
	id := natter.NewMessageID(time.Now())
	env, err := from.Seal(id, to, []byte(body), w.peers(from, to))
	if err != nil {
		w.t.Fatal(err)
	}
	return id, env
}

func (w *world) open(k *Keyring, id natter.MessageID, from, to natter.UserID, env []byte) (string, error) {
	o, err := k.Open(id, from, to, env, w.lookup(k))
	if err != nil {
		return "", err
	}
	return string(o.Body), nil
}

func wireDevice(dev natter.DeviceID, bundle, cert []byte) wire.DeviceKeys {
	return wire.DeviceKeys{Device: dev, Bundle: bundle, Cert: cert}
}
