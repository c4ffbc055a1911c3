// Messages sent to a logged-out browser user show at login grouped by
// sender: "While you were away: frank (2), gina (1)", with their first
// lines; a group opens its conversation.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {launch, User, CLI, uniq, secret, guard, WAIT} from "./lib.mjs";

let browser, erin;
const users = () => [erin];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("offline messages grouped by sender at login", {timeout: 180_000}, async () => {
  const frank = new CLI(uniq("frank"));
  const gina = new CLI(uniq("gina"));
  erin = await User.open(browser, uniq("erin"));
  await guard(users, "inbox", async () => {
    await erin.signup();
    await frank.run("signup", frank.name);
    await gina.run("signup", gina.name);
    await frank.run("add", erin.name);
    await gina.run("add", erin.name);
    for (const who of [frank, gina]) {
      await erin.contact(who.name).getByTestId("accept").click({timeout: WAIT});
      await erin.page.locator(`[data-contact="${who.name}"]:not(.request)`).waitFor({timeout: WAIT});
    }
    await erin.logout();

    const f1 = secret("frank first"), f2 = secret("frank second"), g1 = secret("gina only");
    for (const [who, text] of [[frank, f1], [frank, f2], [gina, g1]]) {
      const {out} = await who.run("send", erin.name, text);
      assert.match(out, /stored for offline delivery/, `natter send said: ${out}`);
    }

    await erin.login();
    const inbox = erin.page.getByTestId("inbox");
    await inbox.waitFor({state: "visible", timeout: WAIT});
    const fg = erin.page.locator(`[data-inbox="${frank.name}"]`);
    const gg = erin.page.locator(`[data-inbox="${gina.name}"]`);
    await fg.filter({hasText: "2 messages"}).waitFor({timeout: WAIT});
    await gg.filter({hasText: "1 message"}).waitFor({timeout: WAIT});
    assert.match(await fg.innerText(), new RegExp(f1));
    assert.match(await fg.innerText(), new RegExp(f2));
    assert.match(await gg.innerText(), new RegExp(g1));
    assert.equal(await erin.page.locator("#inbox-summary").innerText(), `${frank.name} (2), ${gina.name} (1)`);
    // Unread counts in the list too.
    await erin.contact(frank.name).getByTestId("unread").filter({hasText: "2"}).waitFor({timeout: WAIT});

    // A group opens its conversation, with both messages, and leaves the panel.
    await fg.click();
    await erin.page.locator("#conv-name", {hasText: frank.name}).waitFor({timeout: WAIT});
    await erin.message(f1).waitFor({timeout: WAIT});
    await erin.message(f2).waitFor({timeout: WAIT});
    await fg.waitFor({state: "detached", timeout: WAIT});
    await gg.waitFor({timeout: WAIT});
  });
  await erin.close();
});
