// lib.mjs: what the browser tests share: launching Chromium, a user's page
// (with its console and WebSocket frames kept), signing up, becoming
// contacts, running the natter CLI, reading natterd's metrics, and
// recording the plaintexts that must never reach natterd's disk or sockets.
//
// The environment comes from test/webtest (Go), which starts natterd:
// NATTER_URL, NATTER_SERVER, NATTER_BIN, NATTERD_ADMIN, NATTERD_DATA,
// NATTER_CHROMIUM, NATTER_WORK, ARTIFACTS.

import {chromium} from "playwright-core";
import {spawn} from "node:child_process";
import {randomBytes} from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

export const env = {
  url: need("NATTER_URL"),
  server: need("NATTER_SERVER"),
  bin: need("NATTER_BIN"),
  admin: need("NATTERD_ADMIN"),
  data: need("NATTERD_DATA"),
  chromium: process.env.NATTER_CHROMIUM || "/usr/bin/chromium",
  work: process.env.NATTER_WORK || fs.mkdtempSync("/tmp/natter-web-"),
  artifacts: process.env.ARTIFACTS || fs.mkdtempSync("/tmp/natter-web-artifacts-"),
};

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test ./test/webtest`);
  return v;
}

/** How long a condition may take before a test fails (real network, real crypto, wasm start). */
export const WAIT = 30_000;

export const PASSWORD = "correct-horse-battery";

/** uniq returns a fresh user name (3 to 32 of a-z0-9, starting with a letter). */
export function uniq(prefix) {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}

/** secret returns a distinctive plaintext and records it for the disk check. */
export function secret(label) {
  const s = `${label}-${randomBytes(6).toString("hex")}`;
  recordPlaintext(s);
  return s;
}

/** recordPlaintext adds s to what natterd must never hold or see in clear. */
export function recordPlaintext(s) {
  fs.appendFileSync(path.join(env.artifacts, "plaintexts.txt"), `${s}\n`);
}

/** figure prints a measurement for test/webtest to log. */
export function figure(name, value, unit) {
  console.log(`figure: ${name}: ${value}${unit ? ` ${unit}` : ""}`);
}

/**
 * launch starts Debian's Chromium. natterd's certificate is self-made here:
 * the context's ignoreHTTPSErrors lets pages load, but Chromium registers
 * no service worker from an origin with a certificate error unless it runs
 * with --ignore-certificate-errors (--ignore-certificate-errors-spki-list
 * with the certificate's key is not honoured by this build).
 */
export async function launch() {
  return chromium.launch({
    executablePath: env.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--allow-insecure-localhost", "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--ignore-certificate-errors"],
  });
}

/**
 * User is one person's browser: a context (its own storage) and a page,
 * with the page's console and every WebSocket frame kept for the checks
 * and for the report when a test fails.
 */
export class User {
  constructor(name, ctx, page) {
    this.name = name;
    this.ctx = ctx;
    this.page = page;
    this.console = [];
    this.frames = []; // {dir, payload: Buffer}
    this.responses = [];
  }

  static async open(browser, name, {viewport = {width: 1280, height: 800}, go = true} = {}) {
    const ctx = await browser.newContext({ignoreHTTPSErrors: true, viewport});
    const page = await ctx.newPage();
    const u = new User(name, ctx, page);
    u.watch(page);
    if (go) await u.goto();
    return u;
  }

  watch(page) {
    page.on("console", (m) => this.console.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => this.console.push(`[pageerror] ${e.stack || e.message}`));
    page.on("websocket", (ws) => {
      this.console.push(`[websocket] open ${ws.url()}`);
      ws.on("framesent", (f) => this.frames.push({dir: "sent", payload: asBuffer(f.payload)}));
      ws.on("framereceived", (f) => this.frames.push({dir: "received", payload: asBuffer(f.payload)}));
      ws.on("close", () => this.console.push("[websocket] closed"));
    });
  }

  async goto() {
    await this.page.goto(env.url);
    await this.page.locator("#auth:not([hidden]), #main:not([hidden]), #approval:not([hidden])").first().waitFor({timeout: WAIT});
  }

  /** signup fills the form and waits for the messenger. */
  async signup(password = PASSWORD) {
    await this.page.getByTestId("user").fill(this.name);
    await this.page.getByTestId("password").fill(password);
    await this.page.getByTestId("signup").click();
    await this.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
  }

  async login(password = PASSWORD) {
    await this.page.getByTestId("user").fill(this.name);
    await this.page.getByTestId("password").fill(password);
    await this.page.getByTestId("login").click();
    await this.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
  }

  async logout() {
    await this.page.getByTestId("logout").click();
    await this.page.locator("#auth:not([hidden])").waitFor({timeout: WAIT});
  }

  contact(name) {
    return this.page.locator(`[data-contact="${name}"]`);
  }

  /** open clicks a contact and waits for its conversation. */
  async open(name) {
    if (await this.page.locator("#main.view-chat").count() && await this.page.locator("#btn-back").isVisible()) {
      await this.page.locator("#btn-back").click();
    }
    await this.contact(name).locator(".contact-main").click();
    await this.page.locator("#conv:not([hidden])").waitFor({timeout: WAIT});
    await this.page.locator("#conv-name", {hasText: name}).waitFor({timeout: WAIT});
  }

  /** send types text into the composer and presses Enter. */
  async send(text) {
    const box = this.page.getByTestId("composer");
    await box.fill(text);
    await box.press("Enter");
  }

  message(text) {
    return this.page.locator("[data-message]", {hasText: text});
  }

  /** framesHold reports the first WebSocket frame that contains s (as UTF-8), or null. */
  framesHold(s) {
    const needle = Buffer.from(s);
    return this.frames.find((f) => f.payload.includes(needle)) || null;
  }

  report() {
    return `--- ${this.name}'s console (${this.console.length} lines) ---\n${this.console.join("\n")}`;
  }

  async close() {
    await this.ctx.close().catch(() => {});
  }
}

function asBuffer(p) {
  return Buffer.isBuffer(p) ? p : Buffer.from(String(p));
}

/**
 * guard runs fn; if it fails, prints every user's console (and saves a
 * screenshot of each page) before passing the failure on.
 */
export async function guard(users, label, fn) {
  try {
    return await fn();
  } catch (err) {
    for (const u of users()) {
      if (!u) continue;
      console.error(u.report());
      await u.page.screenshot({path: path.join(env.artifacts, `failed-${label}-${u.name}.png`)}).catch(() => {});
    }
    throw err;
  }
}

/** befriend makes a and b contacts through the UI: a adds b, b accepts. */
export async function befriend(a, b) {
  await a.page.getByTestId("add-contact").fill(b.name);
  await a.page.getByTestId("add").click();
  await a.contact(b.name).waitFor({timeout: WAIT});
  const req = b.contact(a.name);
  await req.getByTestId("accept").click({timeout: WAIT});
  await b.page.locator(`[data-contact="${a.name}"]:not(.request)`).waitFor({timeout: WAIT});
  await a.page.locator(`[data-contact="${b.name}"]:not(.asked)`).waitFor({timeout: WAIT});
}

/** CLI runs the natter command line with a home of its own. */
export class CLI {
  constructor(name) {
    this.name = name;
    this.home = path.join(env.work, `cli-${name}`);
    fs.mkdirSync(this.home, {recursive: true});
    this.env = {...process.env, NATTER_HOME: this.home, NATTER_PASSWORD: PASSWORD, NATTER_SERVER: env.server};
  }

  /** run runs one command and resolves with its output; it rejects if the command fails. */
  run(...args) {
    return new Promise((resolve, reject) => {
      const p = spawn(env.bin, args, {env: this.env, stdio: ["ignore", "pipe", "pipe"]});
      let out = "", err = "";
      p.stdout.on("data", (d) => { out += d; });
      p.stderr.on("data", (d) => { err += d; });
      p.on("error", reject);
      p.on("close", (code) => code === 0 ? resolve({out, err})
        : reject(new Error(`natter ${args.join(" ")} (as ${this.name}) exited ${code}\n${out}${err}`)));
    });
  }

  /**
   * listen starts `natter listen --json` and returns it: events() yields
   * its JSON lines, waitFor(pred) resolves with the first event that matches.
   */
  listen(...args) {
    const p = spawn(env.bin, ["listen", "--json", ...args], {env: this.env, stdio: ["ignore", "pipe", "pipe"]});
    const events = [];
    const waiters = [];
    let stderr = "";
    p.stderr.on("data", (d) => { stderr += d; });
    readline.createInterface({input: p.stdout}).on("line", (line) => {
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        ev = {type: "text", line};
      }
      ev.receivedAt = performance.now();
      events.push(ev);
      for (const w of [...waiters]) {
        if (w.pred(ev)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(ev);
        }
      }
    });
    const exited = new Promise((resolve) => p.on("close", resolve));
    return {
      proc: p,
      events,
      stderr: () => stderr,
      waitFor(pred, what = "an event", timeout = WAIT) {
        const have = events.find(pred);
        if (have) return Promise.resolve(have);
        return new Promise((resolve, reject) => {
          const w = {pred, resolve};
          waiters.push(w);
          setTimeout(() => {
            if (waiters.includes(w)) {
              waiters.splice(waiters.indexOf(w), 1);
              reject(new Error(`natter listen did not print ${what} in ${timeout} ms; it printed:\n${events.map((e) => JSON.stringify(e)).join("\n")}\n${stderr}`));
            }
          }, timeout);
        });
      },
      async stop() {
        p.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        p.kill("SIGKILL");
      },
    };
  }
}

/** metric sums the samples of a Prometheus metric on natterd's admin address. */
export async function metric(name) {
  const res = await fetch(`${env.admin}/metrics`);
  const text = await res.text();
  let sum = 0, seen = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m && m[1] === name) {
      sum += Number(m[3]);
      seen = true;
    }
  }
  if (!seen) throw new Error(`natterd's /metrics has no ${name}`);
  return sum;
}

/** screenshot saves a page's screenshot under $ARTIFACTS. */
export async function screenshot(page, name) {
  // Toasts fade out after a few seconds: keep them out of the pictures.
  await page.locator(".toast:not(.update)").first().waitFor({state: "detached", timeout: 8000}).catch(() => {});
  const file = path.join(env.artifacts, `${name}.png`);
  await page.screenshot({path: file});
  return file;
}
