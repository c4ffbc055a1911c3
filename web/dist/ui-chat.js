// ui-chat.js: the open conversation: header (presence, path), the dialog of
// messages with delivery marks and older history on scroll, typing, the
// composer, and files (send with progress, drop, inline media, download).

import {$, h, icon, clear, show, clock, day, sameDay, size, avatar, presenceWord, pathWord, errText, toast, ago} from "./ui-dom.js";
import {S, isOwn, peerOf} from "./ui-state.js";

const PAGE = 40;                // messages per history page
const AUTO_FETCH = 10_000_000;  // media under this many bytes load by themselves
const TYPING_EVERY = 3000;      // natter.typing at most this often
const TYPING_SHOWN = 5000;      // "is typing" lasts this long after the event
const RANK = {sending: 0, failed: 0, sent: 1, delivered: 2, read: 3};

let conv = null;   // {peer, before, loading, gen, ids: Map id→li, lastTyping}
let gen = 0;       // bumps on every open, so late answers for another conversation are dropped
const early = new Map(); // state events for IDs not shown yet (a send still resolving): id → state
let cb = {closed: () => {}, verify: () => {}, menu: () => {}, markRead: () => {}};

/** initChat wires the composer, the file picker, drag and drop and scrolling. */
export function initChat(callbacks) {
  cb = callbacks;
  const box = $("composer");
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  box.addEventListener("input", () => {
    grow();
    if (!conv || !box.value.trim()) return;
    const now = Date.now();
    if (now - conv.lastTyping >= TYPING_EVERY) {
      conv.lastTyping = now;
      S.natter.typing(conv.peer).catch(() => {});
    }
  });
  box.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length && conv) {
      e.preventDefault();
      for (const f of files) sendFile(conv.peer, f);
    }
  });
  $("composer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
    box.focus();
  });
  $("btn-attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (e) => {
    if (conv) for (const f of e.target.files) sendFile(conv.peer, f);
    e.target.value = "";
  });

  // Drag and drop anywhere on the conversation.
  const area = $("conv");
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  area.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    $("drop").hidden = false;
  });
  area.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  area.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      $("drop").hidden = true;
    }
  });
  area.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    $("drop").hidden = true;
    if (conv) for (const f of e.dataTransfer?.files || []) sendFile(conv.peer, f);
  });

  // At the end of the conversation it stays at the end when the box
  // resizes (a phone's keyboard, a rotation, the window).
  let atEnd = true;
  const scroller = $("messages");
  scroller.addEventListener("scroll", () => {
    atEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    if (conv && scroller.scrollTop < 120) loadOlder();
  }, {passive: true});
  new ResizeObserver(() => { if (atEnd) scrollEnd(); }).observe(scroller);
  $("btn-back").addEventListener("click", () => cb.closed());
  $("btn-verify").addEventListener("click", () => conv && cb.verify(conv.peer));
  $("key-banner-verify").addEventListener("click", () => conv && cb.verify(conv.peer));
  $("btn-conv-menu").addEventListener("click", (e) => {
    e.stopPropagation();
    if (conv) cb.menu(e.currentTarget, conv.peer);
  });
}

/** current returns the open conversation's peer, or null. */
export function openPeer() {
  return conv?.peer ?? null;
}

/** openChat shows the conversation with peer: its newest history page, scrolled to the end. */
export async function openChat(peer, {highlight} = {}) {
  const mine = ++gen;
  if (conv?.peer !== peer) {
    conv = {peer, before: null, loading: false, gen: mine, ids: new Map(), lastTyping: 0, done: false};
    clear($("message-list"));
    $("composer").value = "";
    grow();
  }
  conv.gen = mine;
  show($("conv-empty"), false);
  show($("conv"), true);
  renderHead();
  renderTyping();
  renderKeyWarning();

  conv.loading = true;
  setTop("Loading…");
  try {
    const page = await S.natter.history(peer, null, PAGE);
    if (mine !== gen) return;
    // Keep what is shown (sent or arrived while loading); add what is missing.
    conv.before = page.before ?? null;
    conv.done = conv.before === null;
    addMany(page.messages || [], "merge");
  } catch (x) {
    if (mine !== gen) return;
    setTop(errText(x));
    conv.loading = false;
    return;
  }
  conv.loading = false;
  setTop();
  scrollEnd();
  // Fill the screen: a short first page with more behind it.
  while (conv && mine === gen && !conv.done && $("messages").scrollHeight <= $("messages").clientHeight + 120) {
    if (!(await loadOlder())) break;
  }
  if (highlight) await reveal(highlight, mine);
  if (!highlight) scrollEnd();
  cb.markRead(peer);
  if (window.matchMedia("(pointer: fine)").matches) $("composer").focus();
}

/** closeChat hides the conversation (logout, or the contact went away). */
export function closeChat() {
  conv = null;
  gen++;
  clear($("message-list"));
  show($("conv"), false);
  show($("conv-empty"), true);
}

/** loadOlder prepends the page before the oldest shown message, keeping the scroll position. */
async function loadOlder() {
  if (!conv || conv.loading || conv.done) return false;
  const mine = conv.gen, peer = conv.peer;
  conv.loading = true;
  setTop("Loading older messages…");
  let page;
  try {
    page = await S.natter.history(peer, conv.before, PAGE);
  } catch (x) {
    if (conv && conv.gen === mine) {
      conv.loading = false;
      setTop(errText(x));
    }
    return false;
  }
  if (!conv || conv.gen !== mine) return false;
  conv.loading = false;
  conv.before = page.before ?? null;
  conv.done = conv.before === null;
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  addMany(page.messages || [], "prepend");
  box.scrollTop = box.scrollHeight - fromBottom;
  setTop();
  return (page.messages || []).length > 0;
}

function setTop(text) {
  const top = $("history-top");
  if (text) top.textContent = text;
  else top.textContent = conv?.done ? (conv.ids.size ? "Beginning of the conversation" : "No messages yet: say hello.") : "";
  top.classList.toggle("start", !!conv?.done && !text);
}

async function reveal(id, mine) {
  for (let i = 0; i < 20 && !conv.ids.has(id) && !conv.done && mine === gen; i++) {
    if (!(await loadOlder())) break;
  }
  const li = conv?.ids.get(id);
  if (!li) return;
  li.scrollIntoView({block: "center"});
  li.classList.add("flash");
  setTimeout(() => li.classList.remove("flash"), 2000);
}

/** addMany shows a batch of messages (oldest first): "prepend" older ones, or "merge" into place. */
function addMany(msgs, how) {
  const fresh = msgs.filter((m) => m && !conv.ids.has(m.id));
  if (!fresh.length) return;
  if (how === "prepend") {
    const list = $("message-list");
    const frag = document.createDocumentFragment();
    let prev = null;
    for (const m of fresh) {
      if (!prev || !sameDay(prev.at, m.at)) frag.append(dayItem(m.at));
      frag.append(item(m, prev));
      prev = m;
    }
    // The old first separator is redundant if the batch ends on its day.
    const first = list.firstElementChild;
    if (first?.classList.contains("day") && prev && sameDay(prev.at, Number(first.dataset.at))) {
      first.remove();
      const firstMsg = list.firstElementChild;
      if (firstMsg?.dataset.from === prev.from) firstMsg.classList.add("cont");
    }
    list.prepend(frag);
    return;
  }
  for (const m of fresh) place(m);
}

/** place inserts one message in time order (almost always at the end). */
function place(m) {
  const list = $("message-list");
  let after = list.lastElementChild;
  while (after && (after.classList.contains("day") || Number(after.dataset.at) > m.at)) {
    after = after.previousElementSibling;
  }
  const prevMsg = after && !after.classList.contains("day") ? after : null;
  const prevAt = prevMsg ? Number(prevMsg.dataset.at) : null;
  const li = item(m, prevMsg ? {from: prevMsg.dataset.from, at: prevAt} : null);
  const nodes = [];
  if (prevAt === null || !sameDay(prevAt, m.at)) nodes.push(dayItem(m.at));
  nodes.push(li);
  if (after) after.after(...nodes);
  else list.prepend(...nodes);
  return li;
}

function dayItem(at) {
  return h("li", {class: "day", "data-at": at, "aria-hidden": "true"}, h("span", {}, day(at)));
}

/** item builds one message's element. */
function item(m, prev) {
  const own = isOwn(m);
  const state = m.state || (own ? "sent" : "received");
  const cont = prev && prev.from === m.from && m.at - prev.at < 5 * 60_000 && sameDay(prev.at, m.at);
  const li = h("li", {
    class: `msg ${own ? "own" : "their"}${cont ? " cont" : ""}${m.file ? " has-file" : ""}`,
    "data-message": m.id, "data-from": m.from, "data-state": state, "data-at": m.at,
    "data-path": m.path || null,
  },
  h("div", {class: "bubble"},
    m.file ? filePart(m) : null,
    m.text ? h("div", {class: "text"}, m.text) : null,
    h("div", {class: "meta"},
      m.path === "direct" || m.path === "relayed" ? h("span", {class: "via", title: `sent ${m.path}, peer to peer`}, "⇄") : null,
      h("time", {datetime: new Date(m.at).toISOString(), title: new Date(m.at).toLocaleString()}, clock(m.at)),
      own ? ticks(state) : null)));
  if (m.id) conv.ids.set(m.id, li);
  const st = early.get(m.id);
  if (st) {
    early.delete(m.id);
    setState(li, st);
  }
  return li;
}

function ticks(state) {
  const t = h("span", {class: "ticks"});
  paintTicks(t, state);
  return t;
}

/** paintTicks draws a delivery mark: a clock (sending), ✓ sent, ✓✓ delivered, coloured ✓✓ read. */
function paintTicks(t, state) {
  t.dataset.state = state;
  t.setAttribute("aria-label", state);
  t.title = {sending: "sending", failed: "not sent", sent: "sent: stored on the server", delivered: "delivered to their device", read: "read"}[state] || state;
  if (state === "sending") t.replaceChildren(icon("clock", "sm"));
  else if (state === "failed") t.replaceChildren(icon("warn", "sm"));
  else t.textContent = {sent: "✓", delivered: "✓✓", read: "✓✓"}[state] ?? "";
}

function setState(li, state) {
  const cur = li.dataset.state;
  if ((RANK[state] ?? -1) < (RANK[cur] ?? -1)) return; // states only move forward
  li.dataset.state = state;
  const t = li.querySelector(".ticks");
  if (t) paintTicks(t, state);
}

/** onMessage shows a message that arrived (or was sent elsewhere) if its conversation is open. */
export function onMessage(m) {
  if (!conv || peerOf(m) !== conv.peer || conv.ids.has(m.id)) return false;
  const box = $("messages");
  const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  place(m);
  if (m.from === conv.peer) stopTyping(m.from);
  if (nearEnd || isOwn(m)) scrollEnd();
  setTop();
  return true;
}

/** onState moves the user's messages ids to state. */
export function onState(peer, ids, state) {
  for (const id of ids || []) {
    const li = conv?.peer === peer ? conv.ids.get(id) : null;
    if (li) setState(li, state);
    else if (conv?.peer === peer) early.set(id, state);
  }
  if (early.size > 500) early.clear();
}

/** submit sends the composer's text. */
function submit() {
  if (!conv) return;
  const box = $("composer");
  const text = box.value.replace(/^\s*\n|\s+$/g, "");
  if (!text.trim()) return;
  box.value = "";
  grow();
  conv.lastTyping = 0;
  sendText(conv.peer, text);
}

async function sendText(peer, text) {
  const at = Date.now();
  const li = place({id: "", from: S.me.user, to: peer, text, at, state: "sending"});
  li.removeAttribute("data-message"); // only a stored message carries its ID
  li.dataset.pending = "1";
  scrollEnd();
  setTop();
  try {
    const m = await S.natter.send(peer, text);
    settle(li, m);
  } catch (x) {
    failed(li, x, () => {
      li.remove();
      sendText(peer, text);
    });
  }
}

/** settle turns a pending element into the stored message m. */
function settle(li, m) {
  if (!conv || conv.peer !== m.to) return;
  if (conv.ids.has(m.id)) { // the message event came first
    li.remove();
    return;
  }
  delete li.dataset.pending;
  li.dataset.message = m.id;
  li.dataset.at = m.at;
  if (m.path) li.dataset.path = m.path;
  conv.ids.set(m.id, li);
  li.dataset.state = "sending";
  setState(li, m.state || "sent");
  const st = early.get(m.id);
  if (st) {
    early.delete(m.id);
    setState(li, st);
  }
  const via = li.querySelector(".via");
  if (!via && (m.path === "direct" || m.path === "relayed")) {
    li.querySelector(".meta").prepend(h("span", {class: "via", title: `sent ${m.path}, peer to peer`}, "⇄"));
  }
}

function failed(li, x, retry) {
  li.dataset.state = "failed";
  const t = li.querySelector(".ticks");
  if (t) paintTicks(t, "failed");
  li.querySelector(".bubble").append(h("div", {class: "send-error"},
    h("span", {}, errText(x)), " ",
    h("button", {type: "button", class: "link", onclick: retry}, "Retry")));
  toast(errText(x), "error");
}

/** sendFile sends a file to peer with a progress bar in its bubble. */
export async function sendFile(peer, file) {
  const at = Date.now();
  const fake = {id: "", from: S.me.user, to: peer, text: "", at, state: "sending",
    file: {name: file.name, size: file.size, type: file.type}, local: file};
  const li = place(fake);
  li.removeAttribute("data-message");
  li.dataset.pending = "1";
  const bar = h("progress", {class: "upload", max: file.size || 1, value: 0, "data-testid": "upload-progress"});
  const label = h("span", {class: "upload-label"}, "Sending…");
  const prog = h("div", {class: "progress"}, bar, label);
  li.querySelector(".bubble").prepend(prog);
  scrollEnd();
  setTop();
  const t0 = performance.now();
  try {
    const m = await S.natter.sendFile(peer, file, (done, total) => {
      bar.max = total || 1;
      bar.value = done;
      const secs = (performance.now() - t0) / 1000;
      label.textContent = `${size(done)} of ${size(total)}${secs > 1 ? ` · ${size(done / secs)}/s` : ""}`;
    });
    prog.remove();
    if (m.id && !S.blobs.has(m.id)) S.blobs.set(m.id, URL.createObjectURL(file));
    const part = li.querySelector(".file");
    if (part) part.dataset.id = m.id;
    settle(li, m);
  } catch (x) {
    prog.remove();
    failed(li, x, () => {
      li.remove();
      sendFile(peer, file); // resumes: chunks already stored are not sent again
    });
  }
}

const KIND = (t) => (t || "").split("/")[0];

/** filePart builds a file message's attachment: media inline, name, size and download. */
function filePart(m) {
  const f = m.file;
  const kind = KIND(f.type);
  const media = kind === "image" || kind === "audio" || kind === "video";
  const part = h("div", {class: `file kind-${media ? kind : "other"}`, "data-file": f.name, "data-id": m.id || null});
  const holder = h("div", {class: "media"});
  if (media) part.append(holder);
  const dl = h("button", {type: "button", class: "small download", "data-testid": "download",
    onclick: () => download(part, f, dl)}, "Download");
  part.append(h("div", {class: "file-line"},
    h("span", {class: "file-icon"}, icon(media ? kind : "file", "lg")),
    h("span", {class: "file-info"},
      h("span", {class: "file-name", title: f.name}, f.name),
      h("span", {class: "file-size"}, size(f.size))),
    dl));
  if (media) {
    const local = m.local ? URL.createObjectURL(m.local) : S.blobs.get(m.id);
    if (local) showMedia(holder, kind, local, f.name);
    else if (f.size <= AUTO_FETCH && m.id) {
      holder.append(h("div", {class: "media-loading"}, "Loading…"));
      queueMicrotask(() => fetchBlob(part, m.id).then((url) => showMedia(holder, kind, url, f.name))
        .catch((x) => { clear(holder).append(h("div", {class: "media-loading"}, errText(x))); }));
    } else {
      holder.append(h("button", {type: "button", class: "play", onclick: (e) => {
        e.currentTarget.textContent = "Loading…";
        fetchBlob(part, part.dataset.id).then((url) => showMedia(holder, kind, url, f.name, true))
          .catch((x) => toast(errText(x), "error"));
      }}, kind === "image" ? `Show image (${size(f.size)})` : `▶ Play (${size(f.size)})`));
    }
  }
  return part;
}

function showMedia(holder, kind, url, name, play = false) {
  let el;
  if (kind === "image") {
    el = h("img", {src: url, alt: name, class: "thumb", loading: "lazy", "data-testid": "image"});
    el.addEventListener("click", () => lightbox(url, name));
    el.addEventListener("load", () => {
      if (conv) {
        const box = $("messages");
        if (box.scrollHeight - box.scrollTop - box.clientHeight < el.height + 200) scrollEnd();
      }
    }, {once: true});
  } else if (kind === "audio") {
    el = h("audio", {src: url, controls: true, preload: "metadata", "data-testid": "audio"});
  } else {
    el = h("video", {src: url, controls: true, preload: "metadata", playsinline: true, class: "thumb", "data-testid": "video"});
  }
  clear(holder).append(el);
  if (play && el.play) el.play().catch(() => {});
}

/** fetchBlob fetches a message's file once and keeps its object URL. */
async function fetchBlob(part, id) {
  if (!id) throw new Error("the file is still being sent");
  if (S.blobs.has(id)) return S.blobs.get(id);
  const blob = await S.natter.fetchFile(id, (done, total) => {
    part.dataset.progress = total ? String(Math.round((100 * done) / total)) : "";
  });
  const url = URL.createObjectURL(blob);
  S.blobs.set(id, url);
  return url;
}

async function download(part, f, btn) {
  const id = part.dataset.id;
  btn.disabled = true;
  btn.textContent = "Fetching…";
  try {
    let url = S.blobs.get(id);
    if (!url) {
      const blob = await S.natter.fetchFile(id, (done, total) => {
        btn.textContent = total ? `${Math.round((100 * done) / total)}%` : "Fetching…";
      });
      url = URL.createObjectURL(blob);
      S.blobs.set(id, url);
    }
    const a = h("a", {href: url, download: f.name, class: "hidden-link"});
    document.body.append(a);
    a.click();
    a.remove();
  } catch (x) {
    toast(errText(x), "error");
  } finally {
    btn.disabled = false;
    btn.textContent = "Download";
  }
}

function lightbox(url, name) {
  const dlg = h("dialog", {class: "lightbox"},
    h("img", {src: url, alt: name}),
    h("form", {method: "dialog"}, h("button", {class: "icon close", "aria-label": "Close"}, icon("close"))));
  dlg.addEventListener("close", () => dlg.remove());
  dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close(); });
  document.body.append(dlg);
  dlg.showModal();
}

/** renderHead redraws the header: name, presence, path, verified. */
export function renderHead() {
  if (!conv) return;
  const c = S.contacts.get(conv.peer) || {name: conv.peer, presence: "offline"};
  const presence = c.presence || "offline";
  avatar($("conv-avatar"), conv.peer);
  $("conv-name").textContent = conv.peer;
  $("conv-dot").dataset.presence = presence;
  $("conv-presence").textContent = presence === "offline"
    ? (c.lastSeen ? `last seen ${ago(c.lastSeen)}` : "offline")
    : (c.text ? `${presenceWord(presence)} · ${c.text}` : presenceWord(presence));
  const head = $("conv-head");
  head.dataset.presence = presence;
  const p = S.paths.get(conv.peer) || {path: "server", rtt: 0};
  head.dataset.path = p.path || "server";
  $("conv-path").textContent = pathWord(p.path, p.rtt);
  $("conv-path").dataset.path = p.path || "server";
  $("conv-path").title = {
    direct: "Messages go straight to their device, peer to peer",
    relayed: "Messages go peer to peer through natterd's relay (TURN): still sealed end to end",
    server: "Messages go through natterd, which stores them until delivered: still sealed end to end",
  }[p.path || "server"];
  const blocked = c.state && c.state !== "approved";
  $("composer").disabled = !!blocked;
  $("composer").placeholder = blocked ? (c.state === "blocked" ? "You blocked this contact" : "Not a contact yet") : "Write a message";
}

/** setVerified shows or hides the header's verified badge. */
export function setVerified(peer, verified) {
  if (conv?.peer === peer) show($("conv-verified"), !!verified);
}

/** renderKeyWarning shows the banner when the open contact's keys changed. */
export function renderKeyWarning() {
  const w = conv && S.keyWarnings.get(conv.peer);
  show($("key-banner"), !!w);
  if (w) $("key-banner-text").textContent = `${conv.peer}'s security keys changed. Compare safety numbers before you trust new messages.`;
}

/** typing shows "NAME is typing…" for a few seconds. */
export function onTyping(from) {
  clearTimeout(S.typing.get(from));
  S.typing.set(from, setTimeout(() => stopTyping(from), TYPING_SHOWN));
  renderTyping();
}

function stopTyping(from) {
  if (!S.typing.has(from)) return;
  clearTimeout(S.typing.get(from));
  S.typing.delete(from);
  renderTyping();
  cb.typingChanged?.();
}

function renderTyping() {
  const el = $("typing");
  const on = conv && S.typing.has(conv.peer);
  el.textContent = on ? `${conv.peer} is typing…` : "";
  el.classList.toggle("on", !!on);
}

function scrollEnd() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function grow() {
  const box = $("composer");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
}
