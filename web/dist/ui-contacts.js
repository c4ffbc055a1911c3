// ui-contacts.js: the sidebar: contact sections (requests, online, offline,
// asked, blocked), each contact's menu, the add field, the search results
// and the "while you were away" panel.

import {$, h, icon, clear, show, ago, avatar, presenceWord, errText, toast, clock} from "./ui-dom.js";
import {S} from "./ui-state.js";
import {updateTitle} from "./ui-notify.js";

/** Callbacks from app.js: open(peer, {highlight}), verify(peer). */
let cb = {open: () => {}, verify: () => {}};

const KNOWN = new Set(["approved", "pending_in", "pending_out", "blocked"]);

/** initContacts wires the add field, the search box and the inbox panel. */
export function initContacts(callbacks) {
  cb = callbacks;
  $("add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("add-name");
    const name = input.value.trim();
    const err = $("add-error");
    err.hidden = true;
    if (!name) return;
    if (S.me && name === S.me.user) {
      err.textContent = "That is you.";
      err.hidden = false;
      return;
    }
    try {
      await S.natter.add(name);
      input.value = "";
      toast(`Asked ${name} to be your contact.`);
      refreshContacts();
    } catch (x) {
      err.textContent = errText(x);
      err.hidden = false;
    }
  });
  $("add-name").addEventListener("input", () => { $("add-error").hidden = true; });

  let timer = 0, seq = 0;
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => runSearch(++seq), 200);
  });
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      $("search").value = "";
      runSearch(++seq);
    }
  });
  async function runSearch(mine) {
    const q = $("search").value.trim();
    if (!q) {
      show($("results"), false);
      show($("lists"), true);
      return;
    }
    let found = [];
    try {
      found = await S.natter.search(q, 50);
    } catch (x) {
      toast(errText(x), "error");
    }
    if (mine !== seq) return; // a newer query answered first
    renderResults(q, found || []);
  }

  $("inbox-close").addEventListener("click", () => {
    S.inbox.clear();
    renderInbox();
  });

  document.addEventListener("click", (e) => {
    const menu = $("menu");
    if (!menu.hidden && !menu.contains(e.target)) closeMenu();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeMenu();
  });
  window.addEventListener("resize", closeMenu);

  // "last seen 3 min ago" ages: redraw now and then.
  setInterval(() => { if (S.me) renderContacts(); }, 30_000);
}

/** refreshContacts asks the SDK for the whole list again. */
export async function refreshContacts() {
  try {
    setContacts(await S.natter.contacts());
  } catch {
    // offline: the contacts event brings the list when connected
  }
}

/** setContacts replaces the whole list. */
export function setContacts(list) {
  S.contacts.clear();
  for (const c of list || []) if (KNOWN.has(c.state)) S.contacts.set(c.name, {...c});
  renderContacts();
}

/** setContact updates (or removes) one contact. */
export function setContact(c) {
  const old = S.contacts.get(c.name);
  if (!KNOWN.has(c.state)) S.contacts.delete(c.name);
  else S.contacts.set(c.name, {...old, ...c});
  renderContacts();
  return old;
}

/** patchContact merges fields into a known contact. */
export function patchContact(name, fields) {
  const c = S.contacts.get(name);
  if (!c) return;
  Object.assign(c, fields);
  renderContacts();
}

const byName = (a, b) => a.name.localeCompare(b.name);
const RANK = {online: 0, busy: 1, away: 2};

/** renderContacts redraws the sidebar's sections. */
export function renderContacts() {
  const all = [...S.contacts.values()];
  const approved = all.filter((c) => c.state === "approved");
  const on = approved.filter((c) => c.presence && c.presence !== "offline")
    .sort((a, b) => (RANK[a.presence] ?? 3) - (RANK[b.presence] ?? 3) || byName(a, b));
  const off = approved.filter((c) => !c.presence || c.presence === "offline")
    .sort((a, b) => (b.lastSeen || 0) - (a.lastSeen || 0) || byName(a, b));
  const reqs = all.filter((c) => c.state === "pending_in").sort(byName);
  const asked = all.filter((c) => c.state === "pending_out").sort(byName);
  const blocked = all.filter((c) => c.state === "blocked").sort(byName);

  fill("list-requests", "sec-requests", reqs, requestItem);
  fill("list-online", null, on, contactItem);
  fill("list-offline", "sec-offline", off, contactItem);
  fill("list-pending", "sec-pending", asked, askedItem);
  fill("list-blocked", "sec-blocked", blocked, blockedItem);
  show($("online-empty"), on.length === 0);
  $("online-empty").textContent = approved.length === 0 && reqs.length === 0 && asked.length === 0
    ? "No contacts yet: add one by user name below." : "Nobody is online.";
  renderKeysBanner();
  updateTitle();
}

/** renderKeysBanner warns of every contact whose keys changed and is not verified again. */
function renderKeysBanner() {
  const b = $("keys-banner");
  const names = [...S.keyWarnings.keys()].sort();
  show(b, names.length > 0);
  clear(b).append(...names.map((n) => h("div", {class: "keys-line", "data-keys": n},
    icon("warn", "sm"), h("span", {class: "keys-text"}, `${n}'s security keys changed.`),
    h("button", {type: "button", class: "small", onclick: () => cb.verify(n)}, "Verify"))));
}

function fill(listId, secId, items, make) {
  const list = $(listId);
  clear(list).append(...items.map(make));
  if (secId) show($(secId), items.length > 0);
}

function dot(presence) {
  return h("span", {class: "dot", "data-presence": presence || "offline", "aria-hidden": "true"});
}

function avatarOf(c) {
  return h("span", {class: "avatar-wrap"}, avatar(h("span", {class: "avatar"}), c.name), dot(c.presence));
}

function subline(c) {
  if (S.typing.has(c.name)) return h("span", {class: "contact-sub typing-word"}, "typing…");
  if (!c.presence || c.presence === "offline") {
    const seen = c.lastSeen ? `last seen ${ago(c.lastSeen)}` : "offline";
    return h("span", {class: "contact-sub"}, c.text ? `${seen} · ${c.text}` : seen);
  }
  return h("span", {class: "contact-sub"}, c.text || presenceWord(c.presence));
}

function contactItem(c) {
  const presence = c.presence || "offline";
  const warn = S.keyWarnings.has(c.name);
  const li = h("li", {
    class: `contact${S.current === c.name ? " current" : ""}`,
    "data-contact": c.name, "data-presence": presence,
  },
  h("button", {type: "button", class: "contact-main", onclick: () => cb.open(c.name),
    "aria-current": S.current === c.name ? "true" : null},
  avatarOf(c),
  h("span", {class: "contact-text"},
    h("span", {class: "contact-name"}, c.name, warn ? h("span", {class: "warn-mark", title: "Keys changed: verify"}, " ", icon("warn", "sm")) : null),
    subline(c)),
  c.unread > 0 ? h("span", {class: "unread", "data-testid": "unread", "aria-label": `${c.unread} unread`}, c.unread > 99 ? "99+" : String(c.unread)) : null),
  h("button", {type: "button", class: "icon contact-menu", "aria-label": `More for ${c.name}`, "aria-haspopup": "menu",
    onclick: (e) => { e.stopPropagation(); openMenu(e.currentTarget, c.name); }}, icon("more")));
  return li;
}

function requestItem(c) {
  return h("li", {class: "contact request", "data-contact": c.name, "data-presence": c.presence || "offline"},
    h("div", {class: "contact-main static"},
      avatarOf(c),
      h("span", {class: "contact-text"},
        h("span", {class: "contact-name"}, c.name),
        h("span", {class: "contact-sub"}, "wants to be your contact"))),
    h("div", {class: "request-buttons"},
      h("button", {type: "button", class: "primary small", "data-testid": "accept", onclick: () => act("accept", c.name)}, "Accept"),
      h("button", {type: "button", class: "small", "data-testid": "refuse", onclick: () => act("refuse", c.name)}, "Refuse")));
}

function askedItem(c) {
  return h("li", {class: "contact asked", "data-contact": c.name, "data-presence": c.presence || "offline"},
    h("div", {class: "contact-main static"},
      avatarOf(c),
      h("span", {class: "contact-text"},
        h("span", {class: "contact-name"}, c.name),
        h("span", {class: "contact-sub"}, "waiting for their answer"))),
    h("button", {type: "button", class: "small quiet", onclick: () => act("remove", c.name)}, "Cancel"));
}

function blockedItem(c) {
  return h("li", {class: "contact blocked", "data-contact": c.name, "data-presence": "offline"},
    h("div", {class: "contact-main static"},
      avatarOf({...c, presence: "offline"}),
      h("span", {class: "contact-text"},
        h("span", {class: "contact-name"}, c.name),
        h("span", {class: "contact-sub"}, "blocked"))),
    h("button", {type: "button", class: "small", onclick: () => act("unblock", c.name)}, "Unblock"));
}

const DONE = {
  accept: (n) => `${n} is now your contact.`,
  refuse: (n) => `Refused ${n}'s request.`,
  remove: (n) => `Removed ${n}.`,
  block: (n) => `Blocked ${n}.`,
  unblock: (n) => `Unblocked ${n}: add them again to talk.`,
};

/** act runs a contact action (accept, refuse, remove, block, unblock). */
export async function act(what, name) {
  if ((what === "remove" || what === "block") && S.contacts.get(name)?.state === "approved" &&
      !confirm(what === "block" ? `Block ${name}? They will no longer reach you or see your presence.` : `Remove ${name} from your contacts?`)) {
    return;
  }
  try {
    await S.natter[what](name);
    toast(DONE[what](name));
  } catch (x) {
    toast(errText(x), "error");
  }
  refreshContacts();
}

/** openMenu shows a contact's menu next to the button that opened it. */
export function openMenu(anchor, name) {
  const menu = $("menu");
  const c = S.contacts.get(name);
  const items = [
    ["Open conversation", () => cb.open(name)],
    ["Verify safety number", () => cb.verify(name)],
    ["Remove contact", () => act("remove", name)],
    c?.state === "blocked" ? ["Unblock", () => act("unblock", name)] : ["Block", () => act("block", name)],
  ];
  clear(menu).append(...items.map(([label, f]) => h("button", {type: "button", role: "menuitem",
    "data-action": label.split(" ")[0].toLowerCase(), onclick: () => { closeMenu(); f(); }}, label)));
  menu.dataset.for = name;
  menu.hidden = false;
  const r = anchor.getBoundingClientRect();
  const w = menu.offsetWidth, hgt = menu.offsetHeight;
  menu.style.left = `${Math.max(8, Math.min(r.right - w, innerWidth - w - 8))}px`;
  menu.style.top = `${r.bottom + hgt + 8 > innerHeight ? r.top - hgt - 4 : r.bottom + 4}px`;
  menu.querySelector("button")?.focus();
}

export function closeMenu() {
  $("menu").hidden = true;
}

function renderResults(q, found) {
  show($("lists"), false);
  show($("results"), true);
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  clear($("results-list")).append(...found.map(({peer, message}) =>
    h("li", {},
      h("button", {type: "button", class: "result", "data-peer": peer, "data-result": message.id,
        onclick: () => cb.open(peer, {highlight: message.id})},
      h("span", {class: "result-head"},
        h("strong", {}, peer),
        h("time", {}, `${ago(message.at)} · ${clock(message.at)}`)),
      h("span", {class: "result-text"},
        message.from === S.me?.user ? h("span", {class: "muted"}, "You: ") : null,
        ...marked(message.text || message.file?.name || "", words))))));
  show($("results-empty"), found.length === 0);
}

/** marked splits text into text nodes and <mark>s where a word starts with a query word. */
function marked(text, words) {
  const out = [];
  const re = /[\p{L}\p{N}]+/gu;
  let last = 0, m;
  const fold = (s) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  while ((m = re.exec(text))) {
    const w = fold(m[0]);
    const q = words.map(fold).find((x) => w.startsWith(x));
    if (!q) continue;
    out.push(text.slice(last, m.index), h("mark", {}, m[0].slice(0, q.length)));
    last = m.index + q.length;
  }
  out.push(text.slice(last));
  return out.filter((x) => x !== "");
}

/** addInbox merges an inbox event's groups. */
export function addInbox(groups) {
  for (const g of groups || []) {
    const have = S.inbox.get(g.from) || [];
    const ids = new Set(have.map((m) => m.id));
    for (const m of g.messages || []) if (!ids.has(m.id)) have.push(m);
    have.sort((a, b) => a.at - b.at);
    if (have.length) S.inbox.set(g.from, have);
  }
  renderInbox();
}

/** dropInbox forgets one sender's group (their conversation was opened). */
export function dropInbox(from) {
  if (S.inbox.delete(from)) renderInbox();
}

export function renderInbox() {
  const groups = [...S.inbox.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  show($("inbox"), groups.length > 0);
  $("inbox-summary").textContent = groups.map(([from, ms]) => `${from} (${ms.length})`).join(", ");
  clear($("inbox-groups")).append(...groups.map(([from, ms]) =>
    h("li", {},
      h("button", {type: "button", class: "inbox-group", "data-inbox": from, onclick: () => cb.open(from)},
        h("span", {class: "inbox-head"},
          avatar(h("span", {class: "avatar small"}), from),
          h("strong", {}, from),
          h("span", {class: "count"}, `${ms.length} message${ms.length === 1 ? "" : "s"}`),
          h("time", {}, ago(ms[ms.length - 1].at))),
        ...ms.slice(0, 2).map((m) => h("span", {class: "inbox-line"}, m.file ? [icon("clip", "sm"), ` ${m.file.name}`] : m.text)),
        ms.length > 2 ? h("span", {class: "inbox-more muted"}, `and ${ms.length - 2} more`) : null))));
}
