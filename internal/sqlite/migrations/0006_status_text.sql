-- 0006: the status text a user last set (Store.SetStatusText), kept for
-- when they are offline and read with last_seen (Store.LastSeen).
--
-- The conventions of 0001 hold. '' is no text. The length limit
-- (natter.MaxStatusText, in bytes) is checked by the store's Go code, like
-- the other limits of the Store contract. Connection info is still never
-- written here: it lives only in the live-session registry.
ALTER TABLE users ADD COLUMN status_text TEXT NOT NULL DEFAULT '';
