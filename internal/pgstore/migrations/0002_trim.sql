-- 0002: a bounded store (Store.TrimInbox, ForgetTrimmed, RemoveDevice,
-- IdleDevices).
--
-- The conventions of 0001 hold. Inbox entries are deleted once every device
-- of their user acknowledged them, or when they expire; a message, receipt
-- or copy goes with its last entry. An entry's time is its message's
-- sent_at, receipt's at or copy's sent_at. users.inbox_seq and
-- conversations.last_seq are the counters themselves (not read back from
-- the rows), so deleting rows never makes a number be given twice.

-- receipts gain the sequence numbers of their two inbox entries, as
-- messages have, so that trimming one entry can tell by two primary-key
-- lookups whether the other is left.
ALTER TABLE receipts ADD COLUMN to_seq bigint, ADD COLUMN from_seq bigint;

UPDATE receipts SET
    to_seq = (SELECT i.seq FROM inbox i WHERE i.receipt = receipts.pk AND i.username = receipts.recipient),
    from_seq = (SELECT i.seq FROM inbox i WHERE i.receipt = receipts.pk AND i.username = receipts.sender);

-- trimmed: set once the message's (copy's) last inbox entry was deleted
-- while it was still within the retention. Its body is then empty, Inbox
-- cannot reach it and Conversation skips it; the row stays for the
-- idempotency key and, for a message, its file chunk references.
-- ForgetTrimmed finds trimmed rows past the retention through the partial
-- indexes, which hold only trimmed rows.
ALTER TABLE messages ADD COLUMN trimmed boolean NOT NULL DEFAULT false;
ALTER TABLE copies ADD COLUMN trimmed boolean NOT NULL DEFAULT false;

CREATE INDEX messages_trimmed ON messages (coalesce(sent_at, '-infinity')) WHERE trimmed;
CREATE INDEX copies_trimmed ON copies (coalesce(sent_at, '-infinity')) WHERE trimmed;

-- Deleting a message deletes its chunk references by message.
CREATE INDEX message_chunks_message ON message_chunks (message);
