// sw.js: natter's service worker. It keeps the app shell (the page, its
// modules and styles, Go's wasm support, the SDK's WebAssembly, the icons
// and the manifest) in a versioned cache and answers from it first, so the
// app opens at once, and offline, where it shows what this browser's
// history holds (the SDK keeps the session and the messages in IndexedDB,
// not here).
//
// natterd serves each file at its plain path with no-cache and an ETag,
// and (all but the page, sw.js and the manifest) at /h/HASH/NAME, immutable
// (docs/operations.md, "The browser client"); the page it serves refers to
// the /h/ paths, ES modules keep their plain paths. So:
//   - /h/HASH/NAME: cache first, kept until the page stops naming it.
//   - the plain shell paths: cache first too, then revalidated in the
//     background (an ETag round trip, a 304 when nothing changed), so a new
//     natterd's client is picked up at the next load without bumping VERSION.
//   - anything else, the WebSocket (/ws) above all: the network, untouched.
// VERSION names the cache's layout: change it when this file's way of
// caching changes; the old cache is deleted when the new worker activates.

const VERSION = "natter-shell-v1";

// Relative to this script's folder (the site's root).
const SHELL = [
  "./", // the page (natterd serves index.html at the root)
  "style.css",
  "app.js",
  "ui-dom.js",
  "ui-state.js",
  "ui-notify.js",
  "ui-contacts.js",
  "ui-chat.js",
  "ui-dialogs.js",
  "natter.js",
  "idb.js",
  "wasm_exec.js",
  "natter.wasm",
  "manifest.webmanifest",
  "icons/icon.svg",
  "icons/icon-192.png",
  "icons/icon-512.png",
];

const scope = () => self.registration.scope;
const shellURLs = () => new Set(SHELL.map((p) => new URL(p, scope()).href));
const isHashed = (url) => url.pathname.startsWith("/h/");

/** hashedRefs lists the /h/ URLs a page names in src="..." and href="...". */
function hashedRefs(html) {
  const out = new Set();
  for (const m of html.matchAll(/\b(?:src|href)="([^"]*\/h\/[0-9a-f]+\/[^"]+)"/g)) out.add(new URL(m[1], scope()).href);
  return out;
}

/**
 * refresh fetches the shell, stores it, and the /h/ files the page names.
 * "no-cache" revalidates with the browser's HTTP cache (ETag): what the page
 * itself just loaded comes back as a 304, not downloaded twice.
 */
async function refresh(cache) {
  const page = new URL("./", scope()).href;
  let refs = null;
  await Promise.all(SHELL.map(async (p) => {
    const url = new URL(p, scope()).href;
    try {
      const res = await fetch(url, {cache: "no-cache"});
      if (!res.ok || res.redirected) return;
      if (url === page) refs = hashedRefs(await res.clone().text());
      await cache.put(url, res);
    } catch {
      // offline: keep what the cache has
    }
  }));
  if (!refs) return;
  await Promise.all([...refs].map(async (url) => {
    if (await cache.match(url)) return;
    try {
      const res = await fetch(url);
      if (res.ok) await cache.put(url, res);
    } catch {
      // fetched on first use instead
    }
  }));
  // Forget /h/ files the current page no longer names (an older client's).
  for (const req of await cache.keys()) {
    const u = new URL(req.url);
    if (isHashed(u) && !refs.has(u.href)) await cache.delete(req);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    await refresh(await caches.open(VERSION));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("natter-shell-") && name !== VERSION) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

let refreshing = null; // one background revalidation at a time

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === "/ws" || url.pathname.startsWith("/ws/")) return; // never the socket
  const page = req.mode === "navigate";
  const key = page || url.pathname.endsWith("/index.html") ? scope() : url.origin + url.pathname;
  const hashed = isHashed(url);
  if (!hashed && !shellURLs().has(key)) return;
  event.respondWith((async () => {
    const cache = await caches.open(VERSION);
    const hit = await cache.match(key);
    if (page && !refreshing) {
      // Each load revalidates the shell behind the page's back.
      refreshing = refresh(cache).finally(() => { refreshing = null; });
      event.waitUntil(refreshing);
    }
    if (hit) return hit;
    const res = await fetch(req);
    if (res.ok && res.type === "basic" && !res.redirected) cache.put(key, res.clone());
    return res;
  })());
});
