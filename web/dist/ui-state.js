// ui-state.js: what the page knows, in one place. The SDK (natter.js) holds
// the truth; this is the UI's copy, updated from its answers and events.

export const S = {
  /** The natter API (docs/web.md), set once loaded. */
  natter: null,
  /** natter.me() of the session, or null when logged out. */
  me: null,
  /** Contacts by name (docs/web.md's Contact). */
  contacts: new Map(),
  /** The peer whose conversation is open, or null. */
  current: null,
  /** The path to each peer: {path, rtt}. */
  paths: new Map(),
  /** Contacts typing now: name → timer. */
  typing: new Map(),
  /** Peers whose keys changed since last verified: name → the keys event. */
  keyWarnings: new Map(),
  /** What arrived while away, by sender: name → Msg[] (oldest first). */
  inbox: new Map(),
  /** Blob URLs of fetched or sent files, by message ID. */
  blobs: new Map(),
  /** Whether the connection to natterd is up. */
  online: false,
};

/** reset forgets everything of a session (logout, session ended). */
export function reset() {
  S.me = null;
  S.contacts.clear();
  S.current = null;
  S.paths.clear();
  for (const t of S.typing.values()) clearTimeout(t);
  S.typing.clear();
  S.keyWarnings.clear();
  S.inbox.clear();
  for (const url of S.blobs.values()) URL.revokeObjectURL(url);
  S.blobs.clear();
  S.online = false;
}

/** peerOf is the other side of a message's conversation. */
export function peerOf(msg) {
  return S.me && msg.from === S.me.user ? msg.to : msg.from;
}

/** isOwn says whether the user sent msg (from this or another device). */
export function isOwn(msg) {
  return !!S.me && msg.from === S.me.user;
}
