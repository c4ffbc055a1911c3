// natter.js loads the browser client's Go half (natter.wasm: the Go SDK
// compiled to WebAssembly, internal/webapp) and returns its API, the
// natter object of docs/web.md:
//
//   import {load} from "./natter.js";
//   const natter = await load();
//
// Before Go starts it prepares what the Go side reaches through globals:
// natterIDB (idb.js, the browser's storage) and the device's DTLS
// certificate for peer-to-peer channels: made once, kept in IndexedDB,
// given to every RTCPeerConnection, and its fingerprint (natterDTLS) named
// in the device's signed key bundle, so that contacts can tell a channel
// is this device's.
import "./wasm_exec.js";
import * as idb from "./idb.js";

const CERT_KEY = "dtls-cert";
const CERT_LIFETIME = 365 * 24 * 3600 * 1000; // ms; a new one is made when it ends

async function dtlsCertificate() {
  const RTC = globalThis.RTCPeerConnection;
  if (!RTC) return null;
  let cert = null;
  try {
    cert = await idb.get("kv", CERT_KEY);
  } catch (e) {
    console.warn("natter: stored DTLS certificate", e);
  }
  if (!cert || !(cert.expires > Date.now() + 24 * 3600 * 1000)) {
    cert = await RTC.generateCertificate({ name: "ECDSA", namedCurve: "P-256", expires: CERT_LIFETIME });
    await idb.write([["kv", CERT_KEY, cert]]);
  }
  return cert;
}

// useCertificate makes every RTCPeerConnection of the page use cert
// (pion's js build does not pass certificates on).
function useCertificate(cert) {
  const RTC = globalThis.RTCPeerConnection;
  function NatterPeerConnection(config) {
    return new RTC(Object.assign({}, config || {}, { certificates: [cert] }));
  }
  NatterPeerConnection.prototype = RTC.prototype;
  NatterPeerConnection.generateCertificate = RTC.generateCertificate.bind(RTC);
  globalThis.RTCPeerConnection = NatterPeerConnection;
  if (globalThis.window) globalThis.window.RTCPeerConnection = NatterPeerConnection;
  const fp = cert.getFingerprints().find((f) => f.algorithm.toLowerCase() === "sha-256");
  globalThis.natterDTLS = fp ? "sha-256 " + fp.value.toLowerCase() : "";
}

let loading = null;

// load starts the Go half once and returns the natter API.
export function load() {
  if (!loading) {
    loading = (async () => {
      globalThis.natterIDB = idb;
      await idb.open();
      const cert = await dtlsCertificate();
      if (cert) useCertificate(cert);
      const ready = new Promise((resolve) => {
        globalThis.natterReady = resolve;
      });
      const go = new globalThis.Go();
      const { instance } = await WebAssembly.instantiateStreaming(fetch("natter.wasm"), go.importObject);
      go.run(instance).then(() => console.error("natter: the Go runtime stopped"));
      return await ready;
    })();
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}
