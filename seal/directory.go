package seal

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Peer is a device that messages may be sealed for: its verified bundle
// and, if one was claimed, a one-time prekey.
type Peer struct {
	Bundle *Bundle
	Prekey *Prekey
}

// Directory is a user's keys as this device verified them.
type Directory struct {
	User     natter.UserID
	Identity []byte
	// Devices are the devices certified by Identity, with valid bundles.
	Devices []Peer
	// Pending are devices that published a bundle without a valid
	// certificate (awaiting approval by a device holding the identity);
	// nothing is sealed for them. Bad lists devices whose bundle does not
	// verify at all.
	Pending []*Bundle
	Bad     []natter.DeviceID
	// Changed is set when the identity key differs from the one pinned
	// before (the pin then moves to the new key unless it was verified).
	Changed bool
	// Verified is whether the pinned key is verified and still current.
	Verified bool
}

// Device returns the certified device dev, if any.
func (d *Directory) Device(dev natter.DeviceID) *Peer {
	for i := range d.Devices {
		if d.Devices[i].Bundle.Device == dev {
			return &d.Devices[i]
		}
	}
	return nil
}

// Directory verifies the keys the server handed out for a user: the
// identity against this device's pin, each device's bundle signature and
// identity certificate, and each claimed prekey's signature. A first
// identity is pinned; a changed one is reported (Changed), and if the old
// one was verified, ErrKeyChanged is returned with the Directory (nothing
// may be sealed for the user until they verify again).
func (k *Keyring) Directory(keys *wire.Keys) (*Directory, error) {
	d := &Directory{User: keys.User, Identity: keys.Identity}
	if len(keys.Identity) != ed25519.PublicKeySize {
		return d, fmt.Errorf("%w: %s has no identity key", ErrBadBundle, keys.User)
	}
	for _, dk := range keys.Devices {
		b, err := ParseBundle(dk.Bundle, keys.User, dk.Device)
		if err != nil {
			d.Bad = append(d.Bad, dk.Device)
			continue
		}
		if !VerifyCert(keys.Identity, keys.User, dk.Device, b.SignKey, dk.Cert) {
			d.Pending = append(d.Pending, b)
			continue
		}
		p := Peer{Bundle: b}
		if len(dk.Prekey) > 0 {
			if pk, err := ParsePrekey(dk.Prekey, b); err == nil {
				p.Prekey = pk
			}
		}
		d.Devices = append(d.Devices, p)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	pin := k.pins[keys.User]
	switch {
	case pin == nil:
		now := time.Now()
		k.pins[keys.User] = &Pin{Identity: bytes.Clone(keys.Identity), Since: now, Updated: now}
		return d, k.save()
	case bytes.Equal(pin.Identity, keys.Identity):
		d.Verified = pin.Verified
		d.Changed = pin.Previous != nil
		return d, nil
	case pin.Verified:
		d.Changed = true
		return d, fmt.Errorf("%w: %s", ErrKeyChanged, keys.User)
	default:
		d.Changed = true
		now := time.Now()
		k.pins[keys.User] = &Pin{Identity: bytes.Clone(keys.Identity), Since: now, Updated: now, Previous: pin.Identity}
		for r := range k.out {
			if r.User == keys.User {
				delete(k.out, r)
			}
		}
		return d, k.save()
	}
}
