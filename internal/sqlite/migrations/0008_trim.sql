-- 0008: a bounded store (Store.TrimInbox, ForgetTrimmed, RemoveDevice,
-- IdleDevices).
--
-- The conventions of 0001 hold. Inbox entries are deleted once every device
-- of their user acknowledged them, or when they expire; a message, receipt
-- or copy goes with its last entry. No column records when an entry was
-- appended: an entry's time is its message's sent_at, receipt's at or
-- copy's sent_at, read through the entry's reference.

-- receipts gain the sequence numbers of their two inbox entries, as
-- messages have (to_seq in the recipient's inbox, from_seq in the
-- sender's), so that trimming one entry can tell by two primary-key
-- lookups whether the other is left. The receipts written before are filled
-- in from their entries, found through an index that exists only for that.
ALTER TABLE receipts ADD COLUMN to_seq INTEGER;
ALTER TABLE receipts ADD COLUMN from_seq INTEGER;

CREATE INDEX inbox_receipt_0008 ON inbox (receipt) WHERE receipt IS NOT NULL;

UPDATE receipts SET
    to_seq = (SELECT i.seq FROM inbox i WHERE i.receipt = receipts.pk AND i.user = receipts.recipient),
    from_seq = (SELECT i.seq FROM inbox i WHERE i.receipt = receipts.pk AND i.user = receipts.sender);

DROP INDEX inbox_receipt_0008;

-- trimmed: 1 once the message's (copy's) last inbox entry was deleted while
-- it was still within the retention. Its body is then empty, Inbox cannot
-- reach it and Conversation skips it; the row stays for the idempotency key
-- (UNIQUE (sender, id) of messages, (owner, sender, id) of copies) and, for
-- a message, its conversation sequence number and file chunk references.
-- ForgetTrimmed deletes trimmed rows past the retention: messages in pk
-- order (which is the order of their sent_at, the server's clock), stopping
-- at the first that is recent enough, so they need no index; copies, whose
-- sent_at is the sending device's clock, through a partial index that holds
-- only trimmed copies (the append path never writes it). An index like it on
-- messages cost the trim about 800 of its 2,000 bytes written per message
-- (BenchmarkTrim): each trimmed message's index entry landed on a page of
-- its own.
ALTER TABLE messages ADD COLUMN trimmed INTEGER NOT NULL DEFAULT 0 CHECK (trimmed IN (0, 1));
ALTER TABLE copies ADD COLUMN trimmed INTEGER NOT NULL DEFAULT 0 CHECK (trimmed IN (0, 1));

CREATE INDEX copies_trimmed ON copies (coalesce(sent_at, 0)) WHERE trimmed = 1;
