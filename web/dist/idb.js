// IndexedDB for the Go side of the browser client (internal/webapp): the
// device's keys and session ("kv"), its history ("messages", keyed by
// [owner, peer, message ID]: IDs are time-ordered) and the history's search
// index ("words", keyed by [owner, word, peer, message ID]). Values are
// strings (JSON made by Go). Every function returns a Promise.

const DB = "natter";
const VERSION = 1;

let dbp = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

export function open() {
  if (!dbp) {
    dbp = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        for (const name of ["kv", "messages", "words"]) {
          if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
        }
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error("storage is blocked by another tab of an older version"));
    });
    dbp.catch(() => { dbp = null; });
  }
  return dbp;
}

export async function get(store, key) {
  const db = await open();
  const v = await req(db.transaction(store).objectStore(store).get(key));
  return v === undefined ? null : v;
}

// write applies ops ([store, key, value] puts, [store, key] deletes when
// value is null or absent) in one transaction: all or none.
export async function write(ops) {
  const db = await open();
  const stores = [...new Set(ops.map((o) => o[0]))];
  if (stores.length === 0) return;
  const tx = db.transaction(stores, "readwrite");
  for (const [store, key, value] of ops) {
    const s = tx.objectStore(store);
    if (value === null || value === undefined) s.delete(key);
    else s.put(value, key);
  }
  await done(tx);
}

// range returns [{key, value}] of the keys in [lower, upper] (either may be
// null), newest first if reverse, at most limit (0: all).
export async function range(store, lower, upper, reverse, limit) {
  const db = await open();
  let kr = null;
  if (lower !== null && upper !== null) kr = IDBKeyRange.bound(lower, upper);
  else if (lower !== null) kr = IDBKeyRange.lowerBound(lower);
  else if (upper !== null) kr = IDBKeyRange.upperBound(upper);
  const out = [];
  const tx = db.transaction(store);
  const r = tx.objectStore(store).openCursor(kr, reverse ? "prev" : "next");
  await new Promise((resolve, reject) => {
    r.onerror = () => reject(r.error);
    r.onsuccess = () => {
      const c = r.result;
      if (!c || (limit > 0 && out.length >= limit)) return resolve();
      out.push({ key: c.key, value: c.value });
      c.continue();
    };
  });
  return out;
}
