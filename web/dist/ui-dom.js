// ui-dom.js: small DOM and formatting helpers shared by the UI modules.
// User data (names, message texts, file names) only ever goes into the page
// as text nodes or attribute values, never as HTML.

/** $ returns the element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * h builds an element: h("li", {class: "x", "data-contact": name, onclick: f}, child, ...).
 * Attributes named on* are listeners; class takes a string; children are
 * nodes or strings (strings become text nodes); null and false are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** icon is an SVG icon (style.css's .i-NAME), painted in the text colour. */
export function icon(name, cls = "") {
  return h("span", {class: `i i-${name}${cls ? " " + cls : ""}`, "aria-hidden": "true"});
}

/** clear removes every child of el. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

/** show sets an element's hidden attribute from a condition. */
export function show(el, on) {
  el.hidden = !on;
}

const MIN = 60_000, HOUR = 60 * MIN, DAY = 24 * HOUR;

/** ago says how long ago ms was, in words ("just now", "5 min ago", "yesterday", "3 Mar"). */
export function ago(ms, now = Date.now()) {
  if (!ms) return "";
  const d = now - ms;
  if (d < MIN) return "just now";
  if (d < HOUR) return `${Math.floor(d / MIN)} min ago`;
  if (d < DAY && sameDay(ms, now)) return `${Math.floor(d / HOUR)} h ago`;
  if (sameDay(ms, now - DAY)) return `yesterday at ${clock(ms)}`;
  if (d < 7 * DAY) return new Date(ms).toLocaleDateString(undefined, {weekday: "long"});
  return new Date(ms).toLocaleDateString(undefined, {day: "numeric", month: "short", year: sameYear(ms, now) ? undefined : "numeric"});
}

/** clock is the time of day of ms, "14:03". */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
}

/** day names the day of ms for a separator in a conversation ("Today", "Yesterday", "Monday 3 March"). */
export function day(ms, now = Date.now()) {
  if (sameDay(ms, now)) return "Today";
  if (sameDay(ms, now - DAY)) return "Yesterday";
  return new Date(ms).toLocaleDateString(undefined, {weekday: "long", day: "numeric", month: "long", year: sameYear(ms, now) ? undefined : "numeric"});
}

export function sameDay(a, b) {
  const x = new Date(a), y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

function sameYear(a, b) {
  return new Date(a).getFullYear() === new Date(b).getFullYear();
}

/** size says a byte count for people ("1.4 MB"). */
export function size(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n, i = -1;
  do { v /= 1000; i++; } while (v >= 1000 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** initials gives one or two letters for an avatar. */
export function initials(name) {
  const parts = String(name).split(/[\s._-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : String(name).slice(0, 1);
  return s.toUpperCase();
}

/** hue gives a stable colour hue for a name (avatars). */
export function hue(name) {
  let x = 0;
  for (const c of String(name)) x = (x * 31 + c.codePointAt(0)) >>> 0;
  return x % 360;
}

/** avatar fills el (a span) with a name's initials and colour class. */
export function avatar(el, name) {
  el.textContent = initials(name);
  el.dataset.hue = String(Math.floor(hue(name) / 30)); // 12 colours, in style.css
  return el;
}

/** errText turns a rejected Promise's reason into a sentence. */
export function errText(err) {
  if (!err) return "Something went wrong.";
  const m = err.message || String(err);
  return m.charAt(0).toUpperCase() + m.slice(1);
}

/** toast shows a short message at the bottom of the page for a few seconds. */
export function toast(text, kind = "") {
  const box = $("toasts");
  for (const old of box.querySelectorAll(".toast:not(.update)")) if (old.textContent === text) old.remove();
  const el = h("div", {class: `toast ${kind}`, role: kind === "error" ? "alert" : "status"}, text);
  box.append(el);
  const shown = box.querySelectorAll(".toast:not(.update)");
  for (let i = 0; i < shown.length - 3; i++) shown[i].remove(); // at most three at a time
  setTimeout(() => el.classList.add("out"), 4000);
  setTimeout(() => el.remove(), 4500);
}

/** presenceWord says a presence in words. */
export function presenceWord(p) {
  return {online: "online", away: "away", busy: "busy", offline: "offline"}[p] || "offline";
}

/** pathWord says a conversation's path and round-trip time ("direct · 3 ms"). */
export function pathWord(path, rtt) {
  const w = {direct: "direct", relayed: "relayed", server: "via server"}[path] || "via server";
  return rtt > 0 ? `${w} · ${Math.round(rtt)} ms` : w;
}
