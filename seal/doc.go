// Package seal is natter's end-to-end encryption: the keys a device holds,
// the signed bundles it publishes through natterd, and the envelopes that
// carry a message body sealed for every device that may read it.
//
// The scheme (docs/security.md has it in full, with its threat model):
//
//   - A user's identity key (Ed25519) lives on the device that created it.
//     It certifies each of the user's devices by signing the device's
//     signing key (a device certificate); a new device is trusted by
//     contacts once a device holding the identity approves it.
//   - Each device has its own signing key (Ed25519), a last-resort
//     encryption key and a stock of one-time prekeys (both hybrid
//     ML-KEM-768 + X25519 HPKE keys, signed by the device). Its bundle also
//     names the SHA-256 fingerprint of its DTLS certificate, so that a
//     peer-to-peer channel can be checked against it.
//   - A sending device opens a session to each recipient device with HPKE
//     (crypto/hpke, base mode) to a one-time prekey it claimed from the
//     directory; the session's first message carries the encapsulation,
//     signed by the sender's device key. Both ends derive a chain key from
//     the HPKE exporter and ratchet it forward (HMAC-SHA-256) per message:
//     each message key is used once and forgotten, and the receiver deletes
//     the one-time prekey, so keys that leak later do not open what was
//     already received.
//   - A message body is sealed once (AES-256-GCM under a fresh key); that
//     key is wrapped for each recipient device with the device's next
//     message key. The envelope also holds a wrap for the sending device
//     itself, under a key only it holds, so that it can read its own sent
//     messages back.
//
// Nothing here talks to the network; the client package drives it.
package seal
