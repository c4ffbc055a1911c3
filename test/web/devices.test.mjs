// Devices and keys: a browser logging in to an account made with the CLI
// is a new device; it shows its ID and the command to approve it, and goes
// on to the messenger when the CLI approves it. A contact whose identity
// key changes (natter devices reset on a new device) raises the warning.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {launch, User, CLI, uniq, guard, screenshot, WAIT} from "./lib.mjs";

let browser, kim, mia;
const users = () => [kim, mia];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("a new browser device waits for approval, then opens", {timeout: 180_000}, async () => {
  const cli = new CLI(uniq("kim"));
  kim = await User.open(browser, cli.name);
  await guard(users, "approval", async () => {
    await cli.run("signup", cli.name);
    await kim.page.getByTestId("user").fill(kim.name);
    await kim.page.getByTestId("password").fill(cli.env.NATTER_PASSWORD);
    await kim.page.getByTestId("login").click();
    await kim.page.locator("#approval:not([hidden])").waitFor({timeout: WAIT});
    const device = (await kim.page.getByTestId("device-id").innerText()).trim();
    assert.ok(device.length > 0);
    assert.equal(await kim.page.locator("#approval-command").innerText(), `natter devices approve ${device}`);
    await screenshot(kim.page, "desktop-approval");
    const {out} = await cli.run("devices");
    assert.match(out, new RegExp(device), `natter devices lists the browser: ${out}`);
    await cli.run("devices", "approve", device);
    await kim.page.locator("#main:not([hidden])").waitFor({timeout: WAIT});
  });
  await kim.close();
});

test("a contact's changed keys raise a warning", {timeout: 180_000}, async () => {
  const lou = new CLI(uniq("lou"));
  mia = await User.open(browser, uniq("mia"));
  await guard(users, "keys", async () => {
    await mia.signup();
    await lou.run("signup", lou.name);
    await lou.run("add", mia.name);
    await mia.contact(lou.name).getByTestId("accept").click({timeout: WAIT});
    await mia.page.locator(`[data-contact="${lou.name}"]:not(.request)`).waitFor({timeout: WAIT});
    // mia compares and marks lou verified.
    await mia.open(lou.name);
    await mia.page.getByTestId("verify").click();
    await mia.page.getByTestId("mark-verified").click();
    await mia.page.locator("#verify-state.ok").waitFor({timeout: WAIT});
    await mia.page.locator("#dlg-verify button[value=close]").click();

    // lou loses his device: on a new one he resets the account's identity.
    const lou2 = new CLI(lou.name);
    lou2.home = `${lou.home}-new`;
    lou2.env = {...lou.env, NATTER_HOME: lou2.home};
    await lou2.run("login", lou.name);
    await lou2.run("devices", "reset");

    const warning = mia.page.getByTestId("keys-warning").locator(`[data-keys="${lou.name}"]`);
    await warning.waitFor({timeout: WAIT});
    await mia.page.locator("#key-banner:not([hidden])").waitFor({timeout: WAIT});
    await mia.page.locator("#conv-verified").waitFor({state: "hidden", timeout: WAIT});
    await screenshot(mia.page, "desktop-keys-changed");
  });
  await mia.close();
});

// The other way round: the account is the browser's, and the browser's
// devices panel approves the CLI's new device.
test("the browser approves a new CLI device from its devices panel, then removes it", {timeout: 180_000}, async () => {
  const nora = await User.open(browser, uniq("nora"));
  const cli = new CLI(nora.name);
  await guard(() => [nora], "approve", async () => {
    await nora.signup();
    await cli.run("login", nora.name);
    const before = (await cli.run("devices")).out;
    const mine = before.split("\n").find((l) => l.includes("(this device)"));
    assert.match(mine ?? "", /awaiting approval/, `the CLI's device before: ${before}`);
    const device = mine.split(" ")[0];

    await nora.page.locator("#btn-devices").click();
    const row = nora.page.locator(`#devices-list [data-device="${device}"]`);
    await row.waitFor({timeout: WAIT});
    await row.getByTestId("approve-device").click();
    await nora.page.locator(`#devices-list [data-device="${device}"][data-approved="true"]`).waitFor({timeout: WAIT});

    const after = (await cli.run("devices")).out;
    assert.match(after.split("\n").find((l) => l.includes("(this device)")) ?? "", /approved/, `the CLI's device after: ${after}`);

    // The panel at phone width, with the approved CLI device's Remove button.
    await nora.page.setViewportSize({width: 360, height: 740});
    await screenshot(nora.page, "phone-devices");
    await nora.page.setViewportSize({width: 1280, height: 800});

    // The CLI's device is lost: the panel removes it, and its session ends.
    nora.page.once("dialog", (d) => d.accept());
    await nora.page.locator(`#devices-list [data-device="${device}"]`).getByTestId("remove-device").click();
    await nora.page.locator(`#devices-list [data-device="${device}"]`).waitFor({state: "detached", timeout: WAIT});
    await screenshot(nora.page, "desktop-device-removed");
    const gone = await cli.run("devices").then(() => null, (e) => e);
    assert.ok(gone, "natter devices still works on the removed device");
    assert.match(gone.message, /log in|login/i, "the removed device is told to log in again");
  });
  await nora.close();
});
