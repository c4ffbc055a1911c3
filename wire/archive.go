package wire

import (
	"time"

	"github.com/natterim/natter"
)

// Server-side history, the archive (docs/history.md): off by default and
// per user. When a user turns it on, each of their devices puts a sealed
// record of every message it sends or opens; a new device fetches them to
// fill its local history. The records are sealed under an archive key that
// only the user's devices hold: a device holding it wraps it for each of
// the user's other devices (ArchiveKeyPut), and the server keeps the
// wrapped keys and records as opaque bytes. It learns how many records a
// user has, their sizes and when they were put, nothing else.

// ArchiveSet turns the user's archive on or off, answered with
// ArchiveState. Turning it off deletes every record and wrapped key.
type ArchiveSet struct {
	Ref uint64 `json:"ref"`
	On  bool   `json:"on"`
}

// ArchivePut adds records to the user's archive, answered with OK once they
// are durable, or archive_off. A record whose Key the user's archive holds
// already is skipped (every device of the user puts the messages it sees,
// so most records arrive more than once).
type ArchivePut struct {
	Ref     uint64        `json:"ref"`
	Records []ArchiveItem `json:"records"`
}

// ArchiveItem is one record to put. Key is chosen by the client, opaque
// to the server (a keyed hash of the message's sender and ID), at most
// MaxArchiveKey bytes; Data is the sealed record, at most MaxArchiveData.
type ArchiveItem struct {
	Key  string `json:"key"`
	Data []byte `json:"data"`
}

// ArchiveGet asks for the archive's state and up to Limit records after
// sequence number After (0: from the start), answered with ArchiveState.
type ArchiveGet struct {
	Ref   uint64 `json:"ref"`
	After int64  `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// ArchiveKeyPut stores the archive key wrapped for one of the user's own
// devices (opaque to the server; see docs/history.md), answered with OK.
// It replaces the device's previous one.
type ArchiveKeyPut struct {
	Ref     uint64          `json:"ref"`
	Device  natter.DeviceID `json:"device"`
	Wrapped []byte          `json:"wrapped"`
}

// ArchiveState answers ArchiveSet and ArchiveGet: whether the archive is
// on, the archive key wrapped for the asking device (if some device
// wrapped it for this one), which devices have a wrapped key, and the
// records asked for, oldest first. More says there are records after the
// last one.
type ArchiveState struct {
	Ref        uint64            `json:"ref"`
	On         bool              `json:"on"`
	Key        []byte            `json:"key,omitempty"`
	KeyDevices []natter.DeviceID `json:"key_devices,omitempty"`
	Records    []ArchiveRecord   `json:"records,omitempty"`
	More       bool              `json:"more,omitempty"`
}

// ArchiveRecord is one stored record: its sequence number in the user's
// archive, when the server took it, and the sealed data.
type ArchiveRecord struct {
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Data []byte    `json:"data"`
}

// Archive limits.
const (
	MaxArchiveKey   = 64              // bytes of an ArchiveItem's Key
	MaxArchiveData  = MaxBody + 4<<10 // bytes of one sealed record
	MaxArchiveBatch = 64              // records in one ArchivePut or ArchiveState
	MaxArchiveBytes = 640 << 10       // bytes of records' Data in one ArchivePut or ArchiveState
	MaxWrappedKey   = 8 << 10         // bytes of a wrapped archive key
)
