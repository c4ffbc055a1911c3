-- 0007: the message a receipt names (natter.Receipt.ID), kept with the
-- receipt so that a device that reads it later from the inbox (its user was
-- offline when it was sent) learns which message that went peer to peer,
-- without a conversation sequence number, it covers.
--
-- The conventions of 0001 hold. NULL is no ID: receipts written before this
-- migration, and those that name none, read back with an empty ID. Nothing
-- queries by it (it is read with its receipt only), so it has no index.
ALTER TABLE receipts ADD COLUMN id TEXT;
