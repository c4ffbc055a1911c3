package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/seal"
)

// keysFile names the file that holds user's end-to-end keys on this
// device (private keys included) and what the device knows of contacts'
// identity keys; see docs/security.md. One per user, so that logging in as
// someone else in the same home starts afresh without losing anything.
func keysFile(user natter.UserID) string { return "keys-" + string(user) + ".json" }

// keyring loads the home's keyring for user's device, or makes one, and
// saves it after every change (a new one is written at its first change,
// which follows a successful login).
func (h home) keyring(user natter.UserID, device natter.DeviceID) (*seal.Keyring, error) {
	name := keysFile(user)
	b, err := os.ReadFile(h.path(name))
	var kr *seal.Keyring
	switch {
	case err == nil:
		if kr, err = seal.Load(b); err != nil {
			return nil, fmt.Errorf("%s is damaged: %w", h.path(name), err)
		}
		if kr.User() != user || kr.Device() != device {
			return nil, fmt.Errorf("%s holds the keys of %s/%s, not of this device", h.path(name), kr.User(), kr.Device())
		}
	case errors.Is(err, fs.ErrNotExist):
		if kr, err = seal.New(user, device); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("read keys: %w", err)
	}
	// natter listen and a one-shot command of the same home may both hold
	// the keys: before each save, merge what the other saved since.
	last := sha256.Sum256(b)
	kr.SetChanged(func() []byte {
		disk, err := os.ReadFile(h.path(name))
		if err != nil || sha256.Sum256(disk) == last {
			return nil
		}
		return disk
	})
	kr.SetPersist(func(b []byte) error {
		if err := h.writeFile(name, b); err != nil {
			return err
		}
		last = sha256.Sum256(b)
		return nil
	})
	// Read, merge and write are one step across the processes of the home,
	// so no write of one is lost to the other's (with the record of a key
	// it used up).
	kr.SetLock(func() (func(), error) {
		f, err := os.OpenFile(h.path(name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock keys: %w", err)
		}
		if err := lockExclusive(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock keys: %w", err)
		}
		return func() { unlock(f); f.Close() }, nil
	})
	return kr, nil
}

// keysErr explains the end-to-end errors a command can meet.
func keysErr(err error, peer natter.UserID) error {
	switch {
	case errors.Is(err, seal.ErrKeyChanged):
		return withCode("key_changed", "%s's identity key changed since you verified it: nothing was sent. "+
			"Compare safety numbers again with natter verify %s", peer, peer)
	case errors.Is(err, client.ErrDeviceNotApproved):
		return withCode("not_approved", "this device is not approved yet: on a device that holds your identity, run natter devices approve DEVICE")
	case errors.Is(err, client.ErrNoKeys):
		return withCode("no_keys", "%s has no end-to-end keys yet (they have not logged in since keys were introduced)", peer)
	}
	return err
}

func verifyFlags(fs *flag.FlagSet, o *cmdOpts) {
	fs.BoolVar(&o.confirm, "confirm", false, "mark the contact verified (after comparing the number with them)")
	fs.BoolVar(&o.unverify, "unverify", false, "clear the verified mark")
}

type jsonVerify struct {
	User         natter.UserID `json:"user"`
	SafetyNumber string        `json:"safety_number"`
	Verified     bool          `json:"verified"`
}

// runVerify shows the safety number shared with a contact and, with
// --confirm, marks the contact verified.
func runVerify(ctx context.Context, r *runner, args []string) error {
	if err := natter.ValidateUserID(args[0]); err != nil {
		return err
	}
	peer := natter.UserID(args[0])
	return r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		num, verified, err := c.SafetyNumber(ctx, peer)
		if err != nil && !errors.Is(err, seal.ErrKeyChanged) {
			return keysErr(serverErr(fmt.Errorf("keys of %s: %w", peer, err), peer), peer)
		}
		switch {
		case r.opts.confirm:
			if err := c.MarkVerified(ctx, peer, num); err != nil {
				return fmt.Errorf("verify %s: %w", peer, err)
			}
			verified = true
		case r.opts.unverify:
			if err := c.Keyring().Verify(peer, identityOf(ctx, c, peer), false); err != nil {
				return err
			}
			verified = false
		}
		if r.g.json {
			r.emit(jsonVerify{User: peer, SafetyNumber: num, Verified: verified})
			return nil
		}
		r.printf("Safety number with %s:\n\n    %s\n\n", peer, num)
		switch {
		case verified:
			r.printf("%s is verified.\n", peer)
		case r.opts.unverify:
			r.printf("%s is no longer marked verified.\n", peer)
		default:
			r.printf("Compare it with %s in person or by phone; if it is the same, run\nnatter verify %s --confirm\n", peer, peer)
		}
		return nil
	})
}

// identityOf returns peer's current identity key ("" if unknown).
func identityOf(ctx context.Context, c *client.Client, peer natter.UserID) []byte {
	if p, ok := c.Keyring().Pin(peer); ok {
		return p.Identity
	}
	return nil
}

type jsonDevice struct {
	Device   natter.DeviceID `json:"device"`
	Approved bool            `json:"approved"`
	This     bool            `json:"this,omitempty"`
}

// runDevices lists the user's devices, approves one (devices approve
// DEVICE), removes one (devices remove DEVICE) or resets the identity.
func runDevices(ctx context.Context, r *runner, args []string) error {
	switch {
	case len(args) == 0, len(args) == 2 && (args[0] == "approve" || args[0] == "remove"), len(args) == 1 && args[0] == "reset":
	default:
		return usagef(r.cmd, "devices: use natter devices, natter devices approve DEVICE, natter devices remove DEVICE, or natter devices reset")
	}
	return r.oneShot(ctx, nil, func(c *client.Client, s storedSession) error {
		if len(args) == 1 {
			if err := c.ResetIdentity(ctx); err != nil {
				return serverErr(fmt.Errorf("reset identity: %w", err), "")
			}
			if !r.g.json {
				r.printf("this device now holds a new identity key: your contacts will be warned, and your other devices must be approved again\n")
			}
		}
		if len(args) == 2 && args[0] == "remove" {
			if natter.DeviceID(args[1]) == s.Device {
				return usagef(r.cmd, "devices remove: %s is this device: use natter logout", args[1])
			}
			if err := c.RemoveDevice(ctx, natter.DeviceID(args[1])); err != nil {
				return serverErr(fmt.Errorf("remove device %s: %w", args[1], err), "")
			}
			if !r.g.json {
				r.printf("removed device %s: its sessions ended and your contacts no longer seal for it\n", args[1])
			}
		}
		if len(args) == 2 && args[0] == "approve" {
			if err := c.ApproveDevice(ctx, natter.DeviceID(args[1])); err != nil {
				return withCode("approve", "%v", err)
			}
			if !r.g.json {
				r.printf("approved device %s: your contacts now seal messages for it\n", args[1])
			}
		}
		devs, err := c.Devices(ctx)
		if err != nil {
			return serverErr(err, "")
		}
		if r.g.json {
			out := []jsonDevice{}
			for _, d := range devs {
				out = append(out, jsonDevice{Device: d.Device, Approved: d.Approved, This: d.This})
			}
			r.emit(out)
			return nil
		}
		if len(args) > 0 {
			return nil
		}
		for _, d := range devs {
			state := "approved"
			if !d.Approved {
				state = "awaiting approval (natter devices approve " + string(d.Device) + " on a device that holds your identity)"
			}
			this := ""
			if d.This {
				this = " (this device)"
			}
			r.printf("%s%s: %s\n", d.Device, this, state)
		}
		return nil
	})
}

// keysEventText describes a change of a contact's keys for listen and chat.
func keysEventText(ev client.KeysEvent, me natter.UserID) string {
	switch {
	case ev.Err != nil:
		return fmt.Sprintf("WARNING: %s's identity key changed since you verified it. Nothing will be sent to them until you compare safety numbers again: natter verify %s", ev.User, ev.User)
	case ev.Changed:
		return fmt.Sprintf("warning: %s's identity key changed (a new phone, or someone in the middle?): natter verify %s", ev.User, ev.User)
	case ev.User == me && len(ev.Pending) > 0:
		return fmt.Sprintf("a new device of yours awaits approval: natter devices approve %s", ev.Pending[0])
	}
	return fmt.Sprintf("%s's devices: %d", ev.User, len(ev.Devices))
}
