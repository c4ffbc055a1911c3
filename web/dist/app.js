// app.js: natter's browser client. It loads the Go SDK (natter.js, the
// API of docs/web.md), picks the screen (sign in, device approval, the
// messenger) and routes the SDK's events to the UI modules. No protocol and
// no crypto here: the SDK does those; this draws.

import {load} from "./natter.js";
import {$, h, errText, toast, show} from "./ui-dom.js";
import {S, reset, peerOf, isOwn} from "./ui-state.js";
import {initNotify, notify, beep, updateTitle} from "./ui-notify.js";
import {initContacts, refreshContacts, setContacts, setContact, patchContact, renderContacts,
  addInbox, dropInbox, renderInbox, openMenu, closeMenu} from "./ui-contacts.js";
import {initChat, openChat, closeChat, openPeer, onMessage, onState, onTyping, renderHead,
  renderKeyWarning, setVerified} from "./ui-chat.js";
import {initDialogs, openVerify} from "./ui-dialogs.js";

const LAST_PEER = "natter.open"; // the open conversation, kept across reloads of this tab

// ---------------------------------------------------------------------------
// Screens

function screen(name) {
  for (const id of ["boot", "auth", "approval", "main"]) $(id).hidden = id !== name;
  document.body.className = `on-${name}`;
}

/** narrow says whether the list and the conversation are two views (phones). */
const narrow = () => window.matchMedia("(max-width: 720px)").matches;

function view(which) {
  const main = $("main");
  main.classList.toggle("view-list", which === "list");
  main.classList.toggle("view-chat", which === "chat");
}

// ---------------------------------------------------------------------------
// Boot

async function boot() {
  registerServiceWorker();
  try {
    S.natter = await load();
  } catch (x) {
    $("boot-status").textContent = `natter could not start in this browser: ${errText(x)}`;
    $("boot-status").classList.add("error");
    return;
  }
  initAuth();
  initMain();
  let session = null;
  try {
    session = await S.natter.start(onEvent);
  } catch (x) {
    // A stored session the SDK could not resume yet still lets the page
    // show what this browser has.
    let me = null;
    try {
      me = S.natter.me();
    } catch {
      // no session
    }
    if (!me?.user) {
      showAuth(errText(x));
      return;
    }
    session = me;
  }
  if (session) enter();
  else showAuth();
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const had = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.register("sw.js", {scope: "./"}).catch((x) => {
    console.warn("service worker not registered:", x);
  });
  // A new shell took over: offer to reload into it (not on the first install).
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (!had) return;
    const bar = h("div", {class: "toast update", role: "status"}, "A new version of natter is ready. ",
      h("button", {type: "button", class: "small", onclick: () => location.reload()}, "Reload"));
    $("toasts").append(bar);
  });
}

// ---------------------------------------------------------------------------
// Sign in, device approval

function initAuth() {
  const form = $("auth-form");
  const go = async (how) => {
    const user = $("auth-user").value.trim();
    const password = $("auth-password").value;
    const err = $("auth-error");
    err.hidden = true;
    if (!user || !password) {
      err.textContent = "Enter a user name and a password.";
      err.hidden = false;
      return;
    }
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    form.classList.add("busy");
    try {
      await S.natter[how](user, password);
      $("auth-password").value = "";
      enter();
    } catch (x) {
      err.textContent = errText(x);
      err.hidden = false;
      $("auth-password").select();
    } finally {
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      form.classList.remove("busy");
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go("login");
  });
  $("auth-signup").addEventListener("click", () => go("signup"));
  $("approval-logout").addEventListener("click", logout);
  $("approval-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("approval-command").textContent);
      toast("Copied.");
    } catch {
      toast("Copy it by hand: the clipboard is not available here.");
    }
  });
}

function showAuth(notice) {
  screen("auth");
  show($("auth-notice"), !!notice);
  $("auth-notice").textContent = notice || "";
  $("auth-user").focus();
}

/** enter shows the screen for the session now held: approval or the messenger. */
function enter() {
  S.me = S.natter.me();
  if (!S.me) {
    showAuth();
    return;
  }
  if (!S.me.approved) {
    $("approval-user").textContent = S.me.user;
    $("approval-device").textContent = S.me.device;
    $("approval-command").textContent = `natter devices approve ${S.me.device}`;
    screen("approval");
    return;
  }
  screen("main");
  $("me-name").textContent = S.me.user;
  $("me-status").value = S.me.status && S.me.status !== "offline" ? S.me.status : "online";
  $("me-text").value = S.me.text || "";
  $("me-dot").dataset.presence = $("me-status").value;
  setConn(S.me.online ? "up" : "connecting");
  renderContacts();
  renderInbox();
  refreshContacts();
  const last = sessionStorage.getItem(LAST_PEER);
  if (last && !openPeer()) open(last);
  else if (!openPeer()) view("list");
}

async function logout() {
  try {
    await S.natter.logout();
  } catch (x) {
    toast(errText(x), "error");
  }
  sessionStorage.removeItem(LAST_PEER);
  closeChat();
  reset();
  renderContacts();
  renderInbox();
  showAuth();
}

// ---------------------------------------------------------------------------
// The messenger

function initMain() {
  initNotify();
  initContacts({open, verify: openVerify});
  initChat({
    closed: () => {
      if (history.state?.natterPeer) history.back();
      else closeToList();
    },
    verify: openVerify,
    menu: openMenu,
    markRead,
    typingChanged: renderContacts,
  });
  initDialogs({
    verified: (peer) => {
      setVerified(peer, true);
      renderKeyWarning();
      renderContacts();
    },
  });

  $("btn-logout").addEventListener("click", logout);
  const setPresence = async () => {
    const status = $("me-status").value, text = $("me-text").value.trim();
    $("me-dot").dataset.presence = status;
    try {
      await S.natter.setPresence(status, text);
      S.me = S.natter.me();
    } catch (x) {
      toast(errText(x), "error");
    }
  };
  $("me-status").addEventListener("change", setPresence);
  $("me-text").addEventListener("change", setPresence);
  $("me-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter") e.currentTarget.blur();
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && openPeer()) markRead(openPeer());
  });
  window.addEventListener("popstate", () => {
    if (!history.state?.natterPeer && openPeer()) closeToList();
  });
  window.addEventListener("online", () => S.me && setConn(S.online ? "up" : "connecting"));
  window.addEventListener("offline", () => S.me && setConn("offline"));
}

/** open shows the conversation with peer. */
function open(peer, opts = {}) {
  closeMenu();
  if (!S.me) return;
  const wasOpen = openPeer();
  sessionStorage.setItem(LAST_PEER, peer);
  dropInbox(peer);
  view("chat");
  if (narrow() && !history.state?.natterPeer) history.pushState({natterPeer: peer}, "");
  else if (history.state?.natterPeer) history.replaceState({natterPeer: peer}, "");
  openChat(peer, opts);
  renderContacts();
  if (wasOpen !== peer) {
    S.natter.safety(peer).then((s) => setVerified(peer, s.verified), () => setVerified(peer, false));
    const c = S.contacts.get(peer);
    if (c && c.presence && c.presence !== "offline") {
      S.natter.openDirect(peer).then((p) => setPath(peer, p.path, p.rtt), () => {});
    }
  }
}

function closeToList() {
  sessionStorage.removeItem(LAST_PEER);
  closeChat();
  view("list");
  renderContacts();
}

function markRead(peer) {
  if (document.visibilityState !== "visible" || openPeer() !== peer) return;
  const c = S.contacts.get(peer);
  S.natter.markRead(peer).then(() => {
    if (c && c.unread) patchContact(peer, {unread: 0});
  }, () => {});
}

function setPath(peer, path, rtt) {
  S.paths.set(peer, {path: path || "server", rtt: rtt || 0});
  if (openPeer() === peer) renderHead();
}

/** setConn shows the connection banner: up (hidden), connecting, reconnecting, offline. */
function setConn(state, detail) {
  S.online = state === "up";
  const b = $("conn-banner");
  b.dataset.state = state;
  b.hidden = state === "up";
  b.textContent = {
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    offline: "Offline: showing what this browser has. Messages you write wait for the connection.",
  }[state] || "";
  if (detail && state !== "up") b.title = detail;
  $("me-dot").dataset.presence = state === "up" ? $("me-status").value : "offline";
}

// ---------------------------------------------------------------------------
// Events from the SDK

function onEvent(ev) {
  try {
    handle(ev);
  } catch (x) {
    console.error("natter event", ev?.type, x);
  }
}

function handle(ev) {
  switch (ev.type) {
  case "conn":
    if (ev.final) {
      const why = ev.error ? `Your session ended (${ev.error}): log in again.` : "Your session ended: log in again.";
      closeChat();
      reset();
      renderContacts();
      renderInbox();
      showAuth(why);
      return;
    }
    if (!S.me) return;
    setConn(ev.up ? "up" : navigator.onLine === false ? "offline" : "reconnecting", ev.error);
    if (ev.up) {
      S.me = S.natter.me();
      refreshContacts();
    }
    return;

  case "approval":
    if (ev.approved && S.me && !S.me.approved) {
      toast("This browser was approved.");
      enter();
    } else if (!ev.approved) {
      enter();
    }
    return;

  case "contacts":
    setContacts(ev.contacts);
    if (openPeer()) renderHead();
    return;

  case "contact": {
    const old = setContact(ev.contact);
    const c = ev.contact;
    if (c.state === "pending_in" && old?.state !== "pending_in") {
      toast(`${c.name} wants to be your contact.`);
      notify("Contact request", `${c.name} wants to be your contact.`, `natter-req-${c.name}`);
    } else if (c.state === "approved" && old?.state === "pending_out") {
      toast(`${c.name} accepted: you are now contacts.`);
    }
    if (openPeer() === c.name) renderHead();
    return;
  }

  case "presence":
    patchContact(ev.name, {presence: ev.presence, text: ev.text, lastSeen: ev.lastSeen});
    if (openPeer() === ev.name) renderHead();
    return;

  case "unread":
    patchContact(ev.peer, {unread: ev.unread});
    if (ev.unread > 0 && openPeer() === ev.peer) markRead(ev.peer);
    return;

  case "inbox":
    addInbox(ev.groups);
    return;

  case "message": {
    const m = ev.message;
    const peer = peerOf(m);
    const shown = onMessage(m);
    if (isOwn(m)) return;
    S.typing.delete(m.from);
    if (shown) markRead(peer);
    const line = m.file ? `File: ${m.file.name}` : m.text;
    if (!ev.offline && (document.hidden || openPeer() !== peer)) beep();
    if (!ev.offline) notify(m.from, line, `natter-${m.from}`, () => open(m.from));
    renderContacts();
    return;
  }

  case "state":
    onState(ev.peer, ev.ids, ev.state);
    return;

  case "typing":
    onTyping(ev.from);
    renderContacts();
    return;

  case "path":
    setPath(ev.peer, ev.path, ev.rtt);
    return;

  case "keys":
    if (ev.changed) {
      S.keyWarnings.set(ev.user, ev);
      toast(`${ev.user}'s security keys changed: verify them.`, "warn");
    } else if (ev.verified) {
      S.keyWarnings.delete(ev.user);
    }
    if (openPeer() === ev.user) {
      renderKeyWarning();
      setVerified(ev.user, !!ev.verified && !ev.changed);
    }
    renderContacts();
    return;

  default:
    // A newer SDK may send more: nothing to draw.
  }
}

updateTitle();
boot();
