package turnsrv

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/turn/v5"

	"github.com/natterim/natter"
)

// Credentials returns TURN credentials for user, valid from now for the
// configured TTL: the TURN REST API's username "<expiry unix>:<user>" and
// password base64(HMAC-SHA1(secret, username)). Any client holding them can
// use the relay as user until expires, and only while Authorize(user)
// holds, so the hub gives them to logged-in users only.
func (s *Server) Credentials(user natter.UserID, now time.Time) (username, password string, expires time.Time) {
	expires = time.Unix(now.Add(s.cfg.TTL).Unix(), 0)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + string(user)
	return username, s.password(username), expires
}

// password is the password that goes with username: the TURN REST API's
// base64(HMAC-SHA1(key, username)), where key is the secret of the day the
// credentials expire (secretFor).
func (s *Server) password(username string) string {
	key := s.secret
	if _, exp, err := parseUsername(username); err == nil {
		key = s.secretFor(exp)
	}
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// secretFor is the key of credentials that expire at exp: with a
// configured (shared) secret, HMAC-SHA256(secret, "natter turn <day>"),
// the day being exp's, in days since the Unix epoch. So the key that
// signs credentials changes every day by itself, the same on every node
// that has the secret, and a key that leaks (it sits in every relay's
// memory) is good for one day's credentials. A random per-process secret
// (no Config.Secret) is used as it is: it dies with the process anyway.
func (s *Server) secretFor(exp time.Time) []byte {
	if !s.shared {
		return s.secret
	}
	mac := hmac.New(sha256.New, s.secret)
	fmt.Fprintf(mac, "natter turn %d", exp.Unix()/86400)
	return mac.Sum(nil)
}

// parseUsername splits a TURN REST username into the user and the expiry.
func parseUsername(username string) (natter.UserID, time.Time, error) {
	ts, user, ok := strings.Cut(username, ":")
	if !ok {
		return "", time.Time{}, fmt.Errorf("%w: username %q is not <expiry>:<user>", ErrBadCredentials, username)
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || exp <= 0 {
		return "", time.Time{}, fmt.Errorf("%w: username %q has a bad expiry", ErrBadCredentials, username)
	}
	if err := natter.ValidateUserID(user); err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %w", ErrBadCredentials, err)
	}
	return natter.UserID(user), time.Unix(exp, 0), nil
}

// The reasons a request is refused, as in natter_turn_auth_failures_total.
const (
	reasonMalformed    = "malformed"     // username not <expiry>:<user>, or another realm
	reasonExpired      = "expired"       // credentials expired and no allocation of theirs to keep alive
	reasonUnauthorized = "unauthorized"  // Authorize said no: the user has no live session
	reasonBadPassword  = "bad_integrity" // MESSAGE-INTEGRITY did not match: wrong password
)

// authenticate is the pion AuthHandler: it returns the long-term key that
// pion checks the request's MESSAGE-INTEGRITY with, or refuses (pion then
// answers 401 Unauthorized with a fresh nonce, as RFC 8489 section 9.2.4
// says). It runs on pion's read loop for every authenticated request.
//
// The user ID it returns, which pion hands back to the quota and allocation
// callbacks and requires of every later request on an allocation, is the
// whole TURN username, expiry included, not just the natter user: so an
// allocation is refreshed only with the credentials that made it, which is
// what lets expired credentials keep their own allocation alive (and no
// other).
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	username, realm, src := ra.Username, ra.Realm, ra.SrcAddr
	user, expires, err := parseUsername(username)
	if err != nil || realm != s.cfg.Realm {
		return s.refuse(reasonMalformed, username, src)
	}
	if !s.now().Before(expires) && !s.hasAllocation(src, username) {
		return s.refuse(reasonExpired, username, src)
	}
	if s.cfg.Authorize != nil && !s.cfg.Authorize(user) {
		return s.refuse(reasonUnauthorized, username, src)
	}
	return username, turn.GenerateAuthKey(username, realm, s.password(username)), true
}

// hasAllocation reports whether the client at src holds an allocation made
// with username: expired credentials may keep such an allocation alive.
func (s *Server) hasAllocation(src net.Addr, username string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.allocs[src.String()]
	return ok && a.username == username
}

// refuse counts and logs (at debug level: a flood must not fill the logs)
// a refused request.
func (s *Server) refuse(reason, username string, src net.Addr) (string, []byte, bool) {
	s.m.authFailures.WithLabelValues(reason).Inc()
	s.log.Debug("turn request refused", "reason", reason, "username", username, "client", src.String())
	return "", nil, false
}

// onAuth sees pion's verdict on MESSAGE-INTEGRITY, after authenticate gave
// it the key: false means a wrong password.
func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		s.m.authFailures.WithLabelValues(reasonBadPassword).Inc()
		s.log.Debug("turn request refused", "reason", reasonBadPassword, "username", username,
			"client", src.String(), "method", method)
	}
}

// quota is the pion QuotaHandler, called for each Allocate once it is
// authenticated (with the user ID authenticate returned: the username): a
// user may hold MaxAllocationsPerUser allocations.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	user, _, err := parseUsername(username)
	if err != nil {
		return false
	}
	s.mu.Lock()
	n := s.perUser[user]
	s.mu.Unlock()
	if n >= s.cfg.MaxAllocationsPerUser {
		s.m.quotaRefusals.Inc()
		s.log.Debug("allocation refused: quota reached", "user", user, "allocations", n, "client", src.String())
		return false
	}
	return true
}
