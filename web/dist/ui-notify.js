// ui-notify.js: desktop notifications, the optional beep and the unread
// count in the tab's title.

import {$} from "./ui-dom.js";
import {S} from "./ui-state.js";

const SOUND_KEY = "natter.sound";
let audio = null; // AudioContext, made on the user's gesture that turns sound on

/** initNotify wires the bell and sound buttons. */
export function initNotify() {
  const bell = $("btn-bell");
  bell.addEventListener("click", async () => {
    if (!("Notification" in window)) return;
    if (Notification.permission === "default") await Notification.requestPermission();
    bellState();
  });
  bellState();

  const sound = $("btn-sound");
  sound.addEventListener("click", () => {
    const on = !soundOn();
    localStorage.setItem(SOUND_KEY, on ? "on" : "off");
    if (on) {
      ensureAudio();
      beep();
    }
    soundState();
  });
  soundState();
}

function bellState() {
  const bell = $("btn-bell");
  if (!("Notification" in window)) {
    bell.hidden = true;
    return;
  }
  const p = Notification.permission;
  bell.firstElementChild.className = `i i-${p === "denied" ? "bell-off" : "bell"}`;
  bell.classList.toggle("on", p === "granted");
  bell.title = p === "granted" ? "Notifications are on (when this tab is hidden)"
    : p === "denied" ? "Notifications are blocked in the browser's site settings"
      : "Turn on notifications";
}

function soundOn() {
  return localStorage.getItem(SOUND_KEY) === "on";
}

function soundState() {
  const b = $("btn-sound");
  const on = soundOn();
  b.firstElementChild.className = `i i-${on ? "sound-on" : "sound-off"}`;
  b.setAttribute("aria-pressed", String(on));
  b.classList.toggle("on", on);
  b.title = `Sound for new messages: ${on ? "on" : "off"}`;
}

function ensureAudio() {
  if (!audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) audio = new Ctx();
  }
  if (audio && audio.state === "suspended") audio.resume();
  return audio;
}

/** beep plays a short two-tone chime, if sound is on. */
export function beep() {
  if (!soundOn()) return;
  const ctx = ensureAudio();
  if (!ctx) return;
  const t = ctx.currentTime;
  for (const [f, at] of [[880, 0], [1320, 0.09]]) {
    const o = ctx.createOscillator(), g = ctx.createGain();
    o.type = "sine";
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t + at);
    g.gain.exponentialRampToValueAtTime(0.2, t + at + 0.01);
    g.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.16);
    o.connect(g).connect(ctx.destination);
    o.start(t + at);
    o.stop(t + at + 0.18);
  }
}

/**
 * notify shows a desktop notification when the tab is hidden and the user
 * allowed them; clicking it brings the tab back and calls onClick.
 */
export function notify(title, body, tag, onClick) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const n = new Notification(title, {body, tag, icon: "icons/icon-192.png", badge: "icons/icon-192.png"});
    n.onclick = () => {
      window.focus();
      onClick?.();
      n.close();
    };
  } catch {
    // Some browsers (Android) only notify through a service worker registration.
    navigator.serviceWorker?.ready.then((reg) => reg.showNotification(title, {body, tag, icon: "icons/icon-192.png"})).catch(() => {});
  }
}

/** updateTitle puts the total unread count in the tab's title: "(3) natter". */
export function updateTitle() {
  let n = 0;
  for (const c of S.contacts.values()) if (c.state === "approved") n += c.unread || 0;
  document.title = n > 0 ? `(${n}) natter` : "natter";
  if ("setAppBadge" in navigator) {
    (n > 0 ? navigator.setAppBadge(n) : navigator.clearAppBadge()).catch(() => {});
  }
}
