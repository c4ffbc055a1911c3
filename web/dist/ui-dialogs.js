// ui-dialogs.js: the safety-number dialog (Verify) and the devices panel.

import {$, h, icon, clear, show, errText, toast} from "./ui-dom.js";
import {S} from "./ui-state.js";

let onVerified = () => {};

/** initDialogs wires the dialogs' buttons; verified(peer) is called after "Mark verified". */
export function initDialogs({verified}) {
  onVerified = verified;
  $("verify-mark").addEventListener("click", markVerified);
  $("btn-devices").addEventListener("click", openDevices);
}

let shown = null; // {peer, number} in the verify dialog

/** openVerify shows peer's safety number and QR code. */
export async function openVerify(peer) {
  const dlg = $("dlg-verify");
  shown = null;
  $("verify-peer").textContent = peer;
  $("verify-title").textContent = `Verify ${peer}`;
  clear($("verify-number")).append(h("span", {class: "muted"}, "Computing…"));
  $("verify-qr").removeAttribute("src");
  $("verify-state").textContent = "";
  show($("verify-error"), false);
  $("verify-mark").disabled = true;
  if (!dlg.open) dlg.showModal();
  let s;
  try {
    s = await S.natter.safety(peer);
  } catch (x) {
    clear($("verify-number"));
    $("verify-error").textContent = errText(x);
    show($("verify-error"), true);
    return;
  }
  shown = {peer, number: s.number};
  const groups = String(s.number).trim().split(/\s+/);
  clear($("verify-number")).append(...groups.map((g) => h("span", {class: "group"}, g)));
  // qr is an SVG document: shown as an image (a data: URL), never parsed into the page.
  if (s.qr) $("verify-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(s.qr)}`;
  show($("verify-qr"), !!s.qr);
  renderVerified(peer, s.verified);
}

function renderVerified(peer, verified) {
  const st = $("verify-state");
  st.textContent = verified ? `You marked ${peer} as verified.` : S.keyWarnings.has(peer)
    ? `${peer}'s keys changed since you last talked: compare again.` : `Not verified yet.`;
  if (verified || S.keyWarnings.has(peer)) st.prepend(icon(verified ? "shield" : "warn", "sm"), " ");
  st.className = `verify-state ${verified ? "ok" : S.keyWarnings.has(peer) ? "warn" : ""}`;
  $("verify-mark").disabled = !!verified;
  $("verify-mark").textContent = verified ? "Verified" : "Mark verified";
}

async function markVerified() {
  if (!shown) return;
  const {peer, number} = shown;
  $("verify-mark").disabled = true;
  try {
    await S.natter.verify(peer, number);
    S.keyWarnings.delete(peer);
    renderVerified(peer, true);
    onVerified(peer);
    toast(`${peer} is verified.`);
  } catch (x) {
    $("verify-error").textContent = errText(x);
    show($("verify-error"), true);
    $("verify-mark").disabled = false;
  }
}

/** openDevices lists the user's devices, with an approve button for pending ones and a remove button for every other. */
export async function openDevices() {
  const dlg = $("dlg-devices");
  show($("devices-error"), false);
  clear($("devices-list")).append(h("li", {class: "muted"}, "Loading…"));
  if (!dlg.open) dlg.showModal();
  let list;
  try {
    list = await S.natter.devices();
  } catch (x) {
    clear($("devices-list"));
    $("devices-error").textContent = errText(x);
    show($("devices-error"), true);
    return;
  }
  list.sort((a, b) => Number(b.current) - Number(a.current) || Number(a.approved) - Number(b.approved));
  clear($("devices-list")).append(...list.map((d) =>
    h("li", {class: "device", "data-device": d.id, "data-approved": String(!!d.approved)},
      h("span", {class: "device-icon"}, icon(d.current ? "browser" : "devices", "lg")),
      h("span", {class: "device-text"},
        h("code", {class: "device-id"}, d.id),
        h("span", {class: "muted"}, d.current ? "this browser" : d.approved ? "approved" : "waiting for approval")),
      !d.approved && !d.current ? h("button", {type: "button", class: "primary small", "data-testid": "approve-device",
        onclick: async (e) => {
          e.currentTarget.disabled = true;
          try {
            await S.natter.approveDevice(d.id);
            toast(`Approved device ${d.id}.`);
          } catch (x) {
            toast(errText(x), "error");
          }
          openDevices();
        }}, "Approve") : null,
      !d.current ? h("button", {type: "button", class: "small", "data-testid": "remove-device",
        onclick: async (e) => {
          if (!confirm(`Remove device ${d.id}? Its sessions end and your contacts stop sealing messages for it.`)) return;
          e.currentTarget.disabled = true;
          try {
            await S.natter.removeDevice(d.id);
            toast(`Removed device ${d.id}.`);
          } catch (x) {
            toast(errText(x), "error");
          }
          openDevices();
        }}, "Remove") : null)));
  if (!list.length) $("devices-list").append(h("li", {class: "muted"}, "No devices."));
}
