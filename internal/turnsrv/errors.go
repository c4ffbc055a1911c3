package turnsrv

import "errors"

// Sentinel errors of the package, wrapped with context.
var (
	// ErrBadConfig means New was given a Config it cannot serve with.
	ErrBadConfig = errors.New("turnsrv: bad configuration")
	// ErrBadCredentials means a TURN username is not one Credentials makes.
	ErrBadCredentials = errors.New("turnsrv: bad credentials")

	// errNoTCPRelay refuses TCP relays (RFC 6062), which natter does not
	// offer.
	errNoTCPRelay = errors.New("turnsrv: TCP relays are not offered")
)
