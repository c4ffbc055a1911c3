package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/natterim/natter"
	"github.com/natterim/natter/wire"
)

// Limits on published key material. The server never looks inside it; the
// limits only bound what one user can make it store and hand out.
const (
	maxIdentity       = 256      // bytes of an identity key
	maxBundle         = 16 << 10 // bytes of a device bundle
	maxPrekey         = 4 << 10  // bytes of one one-time prekey
	maxPrekeysInFrame = 100      // one-time prekeys in one PublishKeys
	maxCert           = 512      // bytes of a device certificate
	maxCertsInFrame   = 32       // certificates in one PublishKeys
	maxClaim          = 64       // devices in one FetchKeys.Claim
	// prekeysLow: a claim that leaves a device fewer than this many
	// one-time prekeys tells that device (KeysChanged.PrekeysLow).
	prekeysLow = 20
)

// checkPublish checks a PublishKeys against the limits before anything is
// stored, so that a frame over a limit stores nothing. Over a limit is
// too_large; malformed is bad_request.
func checkPublish(m *wire.PublishKeys) error {
	tooLarge := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{natter.ErrLimit}, args...)...)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{natter.ErrBadRequest}, args...)...)
	}
	switch {
	case len(m.Identity) > maxIdentity:
		return tooLarge("identity key over %d bytes", maxIdentity)
	case m.Reset && len(m.Identity) == 0:
		return bad("reset needs the new identity key")
	case len(m.Bundle) > maxBundle:
		return tooLarge("bundle over %d bytes", maxBundle)
	case len(m.Prekeys) > maxPrekeysInFrame:
		return tooLarge("at most %d one-time prekeys per frame", maxPrekeysInFrame)
	case len(m.Certs) > maxCertsInFrame:
		return tooLarge("at most %d certificates per frame", maxCertsInFrame)
	}
	for i, p := range m.Prekeys {
		switch {
		case len(p) > maxPrekey:
			return tooLarge("one-time prekey %d over %d bytes", i, maxPrekey)
		case len(p) == 0:
			return bad("one-time prekey %d is empty", i)
		}
	}
	for _, c := range m.Certs {
		if err := natter.ValidateDeviceID(string(c.Device)); err != nil {
			return err
		}
		switch {
		case len(c.Cert) > maxCert:
			return tooLarge("certificate of device %s over %d bytes", c.Device, maxCert)
		case len(c.Cert) == 0:
			return bad("certificate of device %s is empty", c.Device)
		}
	}
	return nil
}

// publishKeys stores the key material of a PublishKeys, in this order:
// identity, this device's bundle, certificates, this device's one-time
// prekeys. The first refusal stops it and is the answer; what was stored
// before it stays, and is announced. Every change (identity, bundle, cert)
// is announced with KeysChanged to the user's other devices and online
// approved contacts.
func (c *client) publishKeys(ctx context.Context, m *wire.PublishKeys) {
	h := c.h
	if err := checkPublish(m); err != nil {
		c.fail(m.Ref, err)
		return
	}
	var (
		identityChanged bool
		changed         []natter.DeviceID // devices whose bundle or cert changed, in order, once each
	)
	devChanged := func(d natter.DeviceID) {
		for _, x := range changed {
			if x == d {
				return
			}
		}
		changed = append(changed, d)
	}
	err := func() error {
		if len(m.Identity) > 0 {
			ch, err := h.cfg.Store.SetIdentity(ctx, c.user, m.Identity, m.Reset)
			if err != nil {
				return err
			}
			identityChanged = ch
		}
		if len(m.Bundle) > 0 {
			ch, err := h.cfg.Store.PutBundle(ctx, c.user, c.device, m.Bundle)
			if err != nil {
				return err
			}
			if ch {
				devChanged(c.device)
			}
		}
		for _, cert := range m.Certs {
			ch, err := h.cfg.Store.PutCert(ctx, c.user, cert.Device, cert.Cert)
			if errors.Is(err, natter.ErrNoSuchDevice) {
				return fmt.Errorf("%w: device %s has published no bundle to certify", natter.ErrNoSuchDevice, cert.Device)
			}
			if err != nil {
				return err
			}
			if ch {
				devChanged(cert.Device)
			}
		}
		if len(m.Prekeys) > 0 {
			_, err := h.cfg.Store.AddPrekeys(ctx, c.user, c.device, m.Prekeys)
			switch {
			case errors.Is(err, natter.ErrNoSuchDevice):
				return fmt.Errorf("%w: publish this device's bundle before its one-time prekeys", natter.ErrNoSuchDevice)
			case errors.Is(err, natter.ErrLimit):
				return fmt.Errorf("%w: a device holds at most %d unclaimed one-time prekeys", natter.ErrLimit, natter.MaxPrekeys)
			case err != nil:
				return err
			}
		}
		return nil
	}()
	if err != nil {
		if !errors.Is(err, natter.ErrKeyConflict) && !errors.Is(err, natter.ErrNoSuchDevice) &&
			!errors.Is(err, natter.ErrLimit) && !errors.Is(err, natter.ErrBadRequest) {
			h.met.storeErrors.Inc()
		}
		c.fail(m.Ref, err)
	} else {
		c.push(wire.OK{Ref: m.Ref})
	}

	// Announce what changed, even when a later step was refused. An
	// identity change says it all (certificates went with it): one
	// KeysChanged without a device.
	if identityChanged {
		// Without reset the store takes only a user's first identity key
		// (a different one is refused): that is a key published, not
		// changed.
		if m.Reset {
			c.log.Info("identity key reset: the old key and its device certificates are gone")
		} else {
			c.log.Info("identity key published")
		}
		h.announceKeys(ctx, c, "")
		return
	}
	for _, d := range changed {
		h.announceKeys(ctx, c, d)
	}
}

// announceKeys pushes KeysChanged{user, device} to the user's other
// connections (not c) and to every approved contact's connections. The bus
// reaches only connected devices, which is all KeysChanged is for: a device
// that connects later fetches keys when it needs them.
func (h *Hub) announceKeys(ctx context.Context, c *client, device natter.DeviceID) {
	b, _ := wire.Encode(wire.KeysChanged{User: c.user, Device: device})
	h.publish(ctx, c.user, event{kind: evFrame, skipConn: c.id, frame: b})
	contacts, err := h.approved(ctx, c.user)
	if err != nil {
		h.log.Error("keys changed: contacts", "user", c.user, "err", err)
		return
	}
	for _, to := range contacts {
		h.publish(ctx, to, event{kind: evFrame, frame: b})
	}
	h.met.keyChanges.Inc()
}

// fetchKeys answers a FetchKeys with the key material of the user
// themself or of an approved contact (anyone else gets not_contact, as for
// a message: a block or an unknown name is indistinguishable from not being
// a contact), claiming one one-time prekey of each device named in Claim.
func (c *client) fetchKeys(ctx context.Context, m *wire.FetchKeys) {
	h := c.h
	if len(m.Claim) > maxClaim {
		c.fail(m.Ref, fmt.Errorf("%w: at most %d devices to claim prekeys of", natter.ErrLimit, maxClaim))
		return
	}
	for _, d := range m.Claim {
		if err := natter.ValidateDeviceID(string(d)); err != nil {
			c.fail(m.Ref, err)
			return
		}
	}
	own := m.User == c.user
	if !own && !c.requireContact(ctx, m.Ref, m.User) {
		return
	}
	ks, err := h.cfg.Store.UserKeys(ctx, m.User, m.Claim)
	if err != nil {
		if len(m.Claim) > 0 {
			h.met.storeErrors.Inc()
		}
		c.fail(m.Ref, err)
		return
	}
	out := wire.Keys{Ref: m.Ref, User: m.User, Identity: ks.Identity, Devices: make([]wire.DeviceKeys, 0, len(ks.Devices))}
	claimed := make(map[natter.DeviceID]bool, len(m.Claim))
	for _, d := range m.Claim {
		claimed[d] = true
	}
	var low []natter.DeviceID
	for _, d := range ks.Devices {
		dk := wire.DeviceKeys{Device: d.Device, Bundle: d.Bundle, Cert: d.Cert, Prekey: d.Prekey}
		if own {
			dk.PrekeysLeft = d.PrekeysLeft
		}
		out.Devices = append(out.Devices, dk)
		if claimed[d.Device] {
			if d.Prekey != nil {
				h.met.prekeyClaims.WithLabelValues("prekey").Inc()
			} else {
				h.met.prekeyClaims.WithLabelValues("empty").Inc()
			}
			if d.PrekeysLeft < prekeysLow {
				low = append(low, d.Device)
			}
		}
	}
	c.push(out)
	// Tell each device whose stock ran low, if it is online (the bus
	// reaches connected devices only).
	for _, d := range low {
		b, _ := wire.Encode(wire.KeysChanged{User: m.User, Device: d, PrekeysLow: true})
		h.publish(ctx, m.User, event{kind: evFrame, device: d, frame: b})
	}
}
