// sw.js: natter's service worker. It keeps the app shell (the page, its
// scripts and styles, Go's wasm support, the SDK's WebAssembly, the icons
// and the manifest) in a versioned cache and answers from it first, so the
// app opens offline and shows what this browser's history holds (the SDK
// keeps the session and the messages in IndexedDB, not here).
//
// Only the shell is answered from the cache: the WebSocket (/ws) and
// anything else go to the network untouched. Bump VERSION whenever a shell
// file changes: the browser sees a new sw.js, installs it, fills the new
// cache and deletes the old one; the page then reloads into the new shell
// (app.js offers a reload when the new worker takes over).

const VERSION = "natter-shell-v1";

// Relative to this script's folder (the site's root).
const SHELL = [
  "./", // the page (index.html; natterd serves it at the root)
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

const shellURLs = new Set(SHELL.map((p) => new URL(p, self.registration.scope).href));

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(VERSION);
    // One by one, so that a file the server does not have (yet) does not
    // keep the others out of the cache.
    await Promise.all(SHELL.map(async (p) => {
      try {
        const res = await fetch(p, {cache: "reload"});
        if (res.ok) await cache.put(p, res);
      } catch {
        // offline while installing: the next fetch fills it
      }
    }));
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

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === "/ws" || url.pathname.startsWith("/ws/")) return; // never the socket
  // Navigations to the app (/, /index.html, /?anything) get the shell's page.
  const key = req.mode === "navigate" || url.pathname.endsWith("/index.html")
    ? self.registration.scope : url.origin + url.pathname;
  if (!shellURLs.has(key)) return;
  event.respondWith((async () => {
    const cache = await caches.open(VERSION);
    const hit = await cache.match(key);
    if (hit) return hit;
    const res = await fetch(req);
    if (res.ok && res.type === "basic") cache.put(key, res.clone());
    return res;
  })());
});
