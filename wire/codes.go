package wire

import "fmt"

// Code is a machine-readable error code carried by Error and Bye.
type Code string

// Error codes.
const (
	CodeBadFrame           Code = "bad_frame"           // malformed, truncated or undecodable frame
	CodeTooLarge           Code = "too_large"           // frame or body over the limit
	CodeUnknownType        Code = "unknown_type"        // frame type this version does not know
	CodeUnsupportedVersion Code = "unsupported_version" // Hello with a version the server does not speak
	CodeProtocol           Code = "protocol"            // frame not allowed now (e.g. Send before login)
	CodeBadRequest         Code = "bad_request"         // a field is missing or invalid
	CodeInvalidName        Code = "invalid_name"
	CodeUserExists         Code = "user_exists"
	CodeNoSuchUser         Code = "no_such_user"
	CodeBadCredentials     Code = "bad_credentials"
	CodeSessionExpired     Code = "session_expired" // token unknown, logged out or expired: log in again
	CodeNotContact         Code = "not_contact"
	CodeOffline            Code = "offline" // the device a Signal is for is not online
	CodeNoRequest          Code = "no_request"
	CodeBlocked            Code = "blocked"
	CodeSelf               Code = "self"
	CodeRateLimited        Code = "rate_limited"
	CodeKeyConflict        Code = "key_conflict" // PublishKeys: the identity is already set to a different key and Reset is not set
	CodeUnavailable        Code = "unavailable"  // the server cannot store now (disk full, read-only); retry later
	CodeInternal           Code = "internal"
	CodeTimeout            Code = "timeout"       // silent past the keepalive or handshake timeout
	CodeSlowConsumer       Code = "slow_consumer" // did not read fast enough; reconnect and resume
	CodeReplaced           Code = "replaced"      // the same device logged in on another connection
	CodeShutdown           Code = "shutdown"      // the server is stopping; reconnect later
	CodeLoggedOut          Code = "logged_out"
	CodeQuota              Code = "quota"         // over the user's storage quota or the file size limit
	CodeArchiveOff         Code = "archive_off"   // the user's archive (server-side history) is off
	CodeNoSuchChunk        Code = "no_such_chunk" // a chunk the user did not upload or may not fetch, or one gone after its retention
)

// Err is an Error payload as a Go error, so that client code can match codes
// with errors.As.
type Err struct {
	Code       Code
	Message    string
	RetryAfter int64
}

func (e *Err) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// AsError converts an Error frame into an *Err.
func (e *Error) AsError() *Err {
	return &Err{Code: e.Code, Message: e.Message, RetryAfter: e.RetryAfter}
}
