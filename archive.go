package natter

import "time"

// The archive is a user's optional server-side history (see Store.SetArchive
// and package wire's ArchiveSet): off by default; when on, the user's
// devices put sealed records of their messages so that a new device can fill
// its history. The server keeps records and wrapped archive keys as opaque
// bytes and never looks inside them.

// ArchiveItem is one record to add to a user's archive (Store.PutArchive).
// Key is chosen by the client and identifies the record within the user's
// archive, so that the same message put by several devices is stored once;
// Data is the sealed record. Both are opaque to the server.
type ArchiveItem struct {
	Key  string
	Data []byte
}

// ArchiveRecord is one stored record of a user's archive, as
// Store.ArchiveRecords returns it: its sequence number (increasing in the
// order records were stored, never reused), when the server stored it, and
// the sealed data.
type ArchiveRecord struct {
	Seq  int64
	At   time.Time
	Data []byte
}
