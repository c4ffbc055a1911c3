// Two people in two browsers: sign up, become contacts, see each other
// online, chat both ways (delivery marks reach delivered and read, typing
// shows), the session and the history survive a reload (and an offline
// reload, from the service worker's cache), screenshots at phone and
// desktop widths, and a logout shows as offline on the other side. No
// message text crosses the page's WebSocket in clear.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {env, launch, User, CLI, uniq, secret, befriend, guard, figure, screenshot, WAIT} from "./lib.mjs";

let browser, alice, bob;
const users = () => [alice, bob];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("first load: bytes and time to interactive", {timeout: 180_000}, async () => {
  const ctx = await browser.newContext({ignoreHTTPSErrors: true});
  const page = await ctx.newPage();
  const responses = [];
  page.on("response", (r) => responses.push(r));
  const t0 = performance.now();
  await page.goto(env.url);
  await page.getByTestId("user").waitFor({state: "visible", timeout: WAIT});
  await page.waitForFunction(() => !document.querySelector("#auth[hidden]"));
  const tti = performance.now() - t0;
  let bytes = 0;
  for (const r of responses) {
    const s = await r.request().sizes().catch(() => null);
    if (s) bytes += s.responseBodySize + s.responseHeadersSize;
  }
  figure("first load transferred", `${(bytes / 1024).toFixed(0)} KiB in ${responses.length} responses`);
  figure("first load time to interactive (loopback)", Math.round(tti), "ms");

  // The service worker registers and caches the shell.
  await page.waitForFunction(async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    return !!reg?.active && (await caches.keys()).some((k) => k.startsWith("natter-shell-"));
  }, null, {timeout: WAIT, polling: 200});

  // Installable: the manifest names the start URL, standalone display and icons that exist.
  const manifest = await page.evaluate(async () => {
    const m = await (await fetch(document.querySelector('link[rel="manifest"]').href)).json();
    const icons = [];
    for (const i of m.icons) icons.push({...i, status: (await fetch(new URL(i.src, location.href))).status});
    return {...m, icons};
  });
  assert.equal(manifest.start_url, "/");
  assert.equal(manifest.display, "standalone");
  for (const size of ["192x192", "512x512"]) {
    assert.ok(manifest.icons.some((i) => i.sizes === size && i.type === "image/png" && i.status === 200), `a ${size} PNG icon`);
  }
  assert.ok(manifest.icons.some((i) => i.type === "image/svg+xml" && i.status === 200), "an SVG icon");
  await ctx.close();
});

test("two browsers: contacts, presence, chat both ways, delivery marks, typing", {timeout: 180_000}, async () => {
  alice = await User.open(browser, uniq("alice"));
  bob = await User.open(browser, uniq("bob"));
  await guard(users, "chat", async () => {
    await alice.signup();
    await bob.signup();
    await befriend(alice, bob);

    // Each sees the other online, in the online section.
    await alice.page.locator(`#list-online [data-contact="${bob.name}"][data-presence="online"]`).waitFor({timeout: WAIT});
    await bob.page.locator(`#list-online [data-contact="${alice.name}"][data-presence="online"]`).waitFor({timeout: WAIT});

    // alice writes first; bob has not opened the conversation: an unread badge.
    await alice.open(bob.name);
    const first = secret("first hello from alice");
    const tFirst = performance.now();
    await alice.send(first);
    await alice.message(first).waitFor({timeout: WAIT});
    await bob.contact(alice.name).getByTestId("unread").filter({hasText: "1"}).waitFor({timeout: WAIT});
    await alice.page.locator(`[data-message][data-state="delivered"], [data-message][data-state="read"]`, {hasText: first}).waitFor({timeout: WAIT});

    // bob opens it: he sees it, it turns read on alice's side, the badge goes.
    await bob.open(alice.name);
    await bob.message(first).waitFor({timeout: WAIT});
    await alice.page.locator(`[data-message][data-state="read"]`, {hasText: first}).waitFor({timeout: WAIT});
    await bob.contact(alice.name).getByTestId("unread").waitFor({state: "detached", timeout: WAIT});
    assert.equal(await bob.message(first).getAttribute("data-from"), alice.name);

    // Typing shows on the other side.
    await bob.page.getByTestId("composer").pressSequentially("I am typ", {delay: 20});
    await alice.page.getByTestId("typing").filter({hasText: `${bob.name} is typing`}).waitFor({timeout: WAIT});

    // bob replies (with a second line); alice sees it; it is read at once (her conversation is open).
    await bob.page.getByTestId("composer").fill("");
    const reply = secret("reply from bob");
    await bob.page.getByTestId("composer").fill(`${reply}`);
    await bob.page.getByTestId("composer").press("Shift+Enter");
    await bob.page.getByTestId("composer").pressSequentially("second line");
    await bob.page.getByTestId("composer").press("Enter");
    await alice.message(reply).waitFor({timeout: WAIT});
    assert.match(await alice.message(reply).innerText(), /second line/);
    await bob.page.locator(`[data-message][data-from="${bob.name}"][data-state="read"]`, {hasText: reply}).waitFor({timeout: WAIT});
    await alice.page.getByTestId("typing").filter({hasText: "typing"}).waitFor({state: "detached", timeout: WAIT}).catch(() => {});

    // Time from Enter in one browser to the message on the other's screen:
    // through natterd first, then over the direct path once it is up.
    const probe = async (label) => {
      const times = [];
      for (let i = 0; i < 5; i++) {
        const text = secret(`latency probe ${label} ${i}`);
        const box = alice.page.getByTestId("composer");
        await box.fill(text);
        const t0 = performance.now();
        await box.press("Enter");
        await bob.message(text).waitFor({timeout: WAIT});
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const path = await alice.page.locator("#conv-head").getAttribute("data-path");
      figure(`message displayed in the other browser (path ${path})`, `median ${Math.round(times[2])} ms, max ${Math.round(times[4])} ms of 5`);
    };
    await probe("a");
    await alice.page.locator(`#conv-head[data-path="direct"]`).waitFor({timeout: 60_000});
    figure("time to a direct path between the browsers (from the first message)", Math.round(performance.now() - tFirst), "ms");
    await probe("b");

    // Own messages on the right, with the checkmarks.
    const own = alice.page.locator(`[data-message][data-from="${alice.name}"]`).first();
    assert.ok((await own.getAttribute("class")).includes("own"));
    assert.match(await own.locator(".ticks").innerText(), /✓✓/);

    // Nothing alice or bob wrote crossed their WebSocket in clear.
    for (const u of users()) {
      for (const text of [first, reply]) {
        const f = u.framesHold(text);
        assert.equal(f, null, `${u.name}'s WebSocket ${f?.dir} a frame holding "${text}"`);
      }
      assert.ok(u.frames.length > 0, `${u.name}'s page used a WebSocket`);
    }
  });
});

test("status, search, safety numbers and devices", {timeout: 180_000}, async () => {
  await guard(users, "extras", async () => {
    // bob goes busy with a text: alice sees it in red, with the text.
    await bob.page.getByTestId("status").selectOption("busy");
    await bob.page.getByTestId("status-text").fill("in a meeting");
    await bob.page.getByTestId("status-text").press("Enter");
    await alice.page.locator(`#list-online [data-contact="${bob.name}"][data-presence="busy"]`, {hasText: "in a meeting"}).waitFor({timeout: WAIT});
    await bob.page.getByTestId("status").selectOption("online");
    await alice.page.locator(`[data-contact="${bob.name}"][data-presence="online"]`).waitFor({timeout: WAIT});

    // Search finds a message by the start of a word; a result opens its conversation.
    await alice.page.getByTestId("search").fill("repl");
    const hit = alice.page.getByTestId("search-results").locator(`[data-peer="${bob.name}"]`, {hasText: "reply from bob"});
    await hit.first().waitFor({timeout: WAIT});
    await hit.first().click();
    await alice.page.locator("#conv-name", {hasText: bob.name}).waitFor({timeout: WAIT});
    await alice.page.getByTestId("search").fill("");
    await alice.page.getByTestId("search-results").waitFor({state: "hidden", timeout: WAIT});

    // Safety numbers: the same on both sides, with a QR code; marking verified shows.
    const numbers = [];
    for (const [u, peer] of [[alice, bob.name], [bob, alice.name]]) {
      if (!(await u.page.locator("#conv-name", {hasText: peer}).count())) await u.open(peer);
      await u.page.getByTestId("verify").click();
      const num = u.page.getByTestId("safety-number");
      await num.locator(".group").first().waitFor({timeout: WAIT});
      numbers.push((await num.innerText()).replace(/\s+/g, ""));
      await u.page.waitForFunction(() => document.getElementById("verify-qr").naturalWidth > 0, null, {timeout: WAIT});
    }
    assert.equal(numbers[0], numbers[1], "both sides show the same safety number");
    assert.match(numbers[0], /^\d{20,}$/);
    await screenshot(alice.page, "desktop-verify");
    await alice.page.getByTestId("mark-verified").click();
    await alice.page.locator("#verify-state.ok").waitFor({timeout: WAIT});
    await alice.page.locator("#dlg-verify button[value=close]").click();
    await alice.page.locator("#conv-verified:not([hidden])").waitFor({timeout: WAIT});
    await bob.page.locator("#dlg-verify button[value=close]").click();

    // Devices: this browser, approved.
    await alice.page.locator("#btn-devices").click();
    await alice.page.locator(`#devices-list [data-device][data-approved="true"]`, {hasText: "this browser"}).waitFor({timeout: WAIT});
    await alice.page.locator("#dlg-devices button[value=close]").click();
  });
});

test("screenshots: phone and desktop, list and conversation", {timeout: 180_000}, async () => {
  const listens = [];
  await guard(users, "screens", async () => {
    const page = alice.page;
    // A fuller list: contacts away and busy (online through natter listen),
    // one never online, one asking; one of them wrote.
    const [carl, dora, ed, fay] = ["carl", "dora", "ed", "fay"].map((n) => new CLI(uniq(n)));
    for (const c of [carl, dora, ed, fay]) {
      await c.run("signup", c.name);
      await c.run("add", alice.name);
    }
    for (const c of [carl, dora, ed]) {
      await alice.contact(c.name).getByTestId("accept").click({timeout: WAIT});
      await alice.page.locator(`[data-contact="${c.name}"]:not(.request)`).waitFor({timeout: WAIT});
    }
    for (const [c, status, text] of [[carl, "away", "back in 10"], [dora, "busy", "deep work"]]) {
      const l = c.listen("--no-direct");
      listens.push(l);
      await alice.page.locator(`[data-contact="${c.name}"][data-presence="online"]`).waitFor({timeout: WAIT});
      await c.run("status", status, text);
      await alice.page.locator(`[data-contact="${c.name}"][data-presence="${status}"]`).waitFor({timeout: WAIT});
    }
    await dora.run("send", alice.name, "Lunch at noon? The new place on the corner.");
    await alice.contact(dora.name).getByTestId("unread").waitFor({timeout: WAIT});
    await page.waitForFunction(() => document.title === "(1) natter", null, {timeout: WAIT});
    await page.locator(".toast").first().waitFor({state: "detached", timeout: 10_000});
    await page.setViewportSize({width: 1280, height: 800});
    await alice.page.locator("#conv:not([hidden])").waitFor({timeout: WAIT});
    await page.locator("#messages").evaluate((el) => { el.scrollTop = el.scrollHeight; }); // the search left it at a found message
    await screenshot(page, "desktop-conversation");
    await page.setViewportSize({width: 360, height: 740});
    await alice.page.getByTestId("composer").waitFor({state: "visible", timeout: WAIT});
    await screenshot(page, "phone-conversation");
    await page.getByTestId("back").click();
    await alice.contact(bob.name).waitFor({state: "visible", timeout: WAIT});
    await screenshot(page, "phone-contacts");
    await page.setViewportSize({width: 1280, height: 800});
    await screenshot(page, "desktop-contacts");
    await alice.open(bob.name);
  }).finally(async () => {
    for (const l of listens) await l.stop();
  });
});

test("a reload keeps the session and the history", {timeout: 180_000}, async () => {
  await guard(users, "reload", async () => {
    await alice.open(bob.name);
    await alice.page.locator(`[data-message][data-from="${bob.name}"]`).first().waitFor({timeout: WAIT});
    const texts = await alice.page.locator(`[data-message][data-from="${bob.name}"] .text`).allInnerTexts();
    assert.ok(texts.length > 0);
    await alice.page.reload();
    await alice.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
    assert.equal(await alice.page.locator("#auth:not([hidden])").count(), 0, "no login form after a reload");
    // The open conversation comes back by itself (this tab's sessionStorage).
    await alice.page.locator("#conv-name", {hasText: bob.name}).waitFor({timeout: WAIT});
    for (const t of texts) await alice.page.locator("[data-message]", {hasText: t.split("\n")[0]}).first().waitFor({timeout: WAIT});
    await alice.page.getByTestId("conn").waitFor({state: "hidden", timeout: WAIT});
  });
});

test("older history loads when scrolled to the top, keeping the place", {timeout: 180_000}, async () => {
  await guard(users, "history", async () => {
    if (!(await bob.page.locator("#conv-name", {hasText: alice.name}).count())) await bob.open(alice.name);
    const tag = secret("history");
    for (let i = 0; i < 60; i++) {
      const box = bob.page.getByTestId("composer");
      await box.fill(`${tag} ${i}`);
      await box.press("Enter");
    }
    await bob.page.locator("[data-message]", {hasText: `${tag} 59`}).waitFor({timeout: WAIT});
    await alice.page.locator("[data-message]", {hasText: `${tag} 59`}).waitFor({timeout: WAIT});
    await alice.page.reload();
    const list = alice.page.locator("#message-list");
    await list.locator("[data-message]", {hasText: `${tag} 59`}).waitFor({timeout: WAIT});
    const before = await list.locator("[data-message]").count();
    assert.ok(await list.locator("[data-message]", {hasText: `${tag} 0`}).count() === 0, "the oldest message is not loaded at first");
    // Scroll to the top: the page before is prepended; the message that was at the top stays in view.
    const top = list.locator("[data-message]").first();
    const topId = await top.getAttribute("data-message");
    await alice.page.locator("#messages").evaluate((el) => { el.scrollTop = 0; });
    await alice.page.waitForFunction((n) => document.querySelectorAll("#message-list [data-message]").length > n, before, {timeout: WAIT});
    const y = await alice.page.locator(`[data-message="${topId}"]`).evaluate((el) => el.getBoundingClientRect().top - document.getElementById("messages").getBoundingClientRect().top);
    assert.ok(y > 0, `the message that was at the top moved down by what was prepended (now at ${y}px)`);
    // Up to the beginning: each time at the top, the page before comes.
    await alice.page.waitForFunction((oldest) => {
      const box = document.getElementById("messages");
      box.scrollTop = 0;
      box.dispatchEvent(new Event("scroll"));
      return [...document.querySelectorAll("#message-list [data-message] .text")].some((e) => e.textContent === oldest);
    }, `${tag} 0`, {timeout: WAIT, polling: 100});
    await list.locator("[data-message] .text").filter({hasText: new RegExp(`^${tag} 0$`)}).waitFor({timeout: WAIT});
  });
});

// docs/web.md: natter.start returns the stored session even offline, and
// history reads the browser's storage; the service worker serves the shell.
test("offline, a reload shows the stored history", {timeout: 180_000}, async () => {
  await guard(users, "offline", async () => {
    // The newest message: the conversation reopens on its newest page.
    const first = await alice.page.locator(`[data-message] .text`).last().innerText();
    await alice.ctx.setOffline(true);
    try {
      await alice.page.reload();
      await alice.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
      await alice.page.locator("[data-message]", {hasText: first.split("\n")[0]}).first().waitFor({timeout: WAIT});
      // The contact list is kept too, everyone offline until natterd answers.
      await alice.page.locator(`[data-contact="${bob.name}"][data-presence="offline"]`).waitFor({timeout: WAIT});
      await alice.page.getByTestId("conn").filter({hasText: /offline|connecting/i}).waitFor({timeout: WAIT});
    } finally {
      await alice.ctx.setOffline(false);
      if (await alice.page.locator("#main[hidden]").count()) await alice.page.reload();
    }
    await alice.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
    await alice.page.getByTestId("conn").waitFor({state: "hidden", timeout: WAIT});
  });
});

test("a logout shows as offline on the other side", {timeout: 180_000}, async () => {
  await guard(users, "logout", async () => {
    await alice.page.locator(`[data-contact="${bob.name}"][data-presence="online"]`).waitFor({timeout: WAIT});
    await bob.logout();
    await alice.page.locator(`#list-offline [data-contact="${bob.name}"][data-presence="offline"]`).waitFor({timeout: WAIT});
    await alice.contact(bob.name).filter({hasText: "last seen"}).waitFor({timeout: WAIT});

    // A contact's menu blocks and unblocks.
    alice.page.once("dialog", (d) => d.accept());
    await alice.contact(bob.name).locator(".contact-menu").click();
    await alice.page.locator('#menu [data-action="block"]').click();
    await alice.page.locator(`#list-blocked [data-contact="${bob.name}"]`).waitFor({timeout: WAIT});
    // Unblocking leaves no relationship (natterd's rule, as in the CLI).
    await alice.contact(bob.name).getByRole("button", {name: "Unblock"}).click();
    await alice.contact(bob.name).waitFor({state: "detached", timeout: WAIT});
    await alice.close();
  });
});

test("the sign-in form says why it was refused", {timeout: 180_000}, async () => {
  await guard(() => [bob], "signin", async () => {
    // An invalid name is refused by the SDK itself.
    await bob.page.getByTestId("user").fill("x");
    await bob.page.getByTestId("password").fill("whatever-password");
    await bob.page.getByTestId("login").click();
    await bob.page.locator("#auth-error:not([hidden])").filter({hasText: /3 to 32/}).waitFor({timeout: WAIT});
    // natterd refuses a wrong password and a taken name.
    await bob.page.getByTestId("user").fill(bob.name);
    await bob.page.getByTestId("password").fill("not-the-password");
    await bob.page.getByTestId("login").click();
    await bob.page.locator("#auth-error:not([hidden])").filter({hasNotText: /3 to 32/}).waitFor({timeout: WAIT});
    const refused = await bob.page.locator("#auth-error").innerText();
    await bob.page.getByTestId("signup").click();
    await bob.page.locator("#auth-error:not([hidden])").filter({hasNotText: refused}).waitFor({timeout: WAIT});
  }).finally(() => bob.close());
});
