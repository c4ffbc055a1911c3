// A browser user and a natter CLI user chat both ways over a direct path:
// the conversation's header reaches data-path="direct", and natterd's count
// of messages it stored and relayed does not move while they chat.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import {launch, User, CLI, uniq, secret, guard, figure, metric, WAIT} from "./lib.mjs";

let browser, dan, listen;
const users = () => [dan];

before(async () => {
  browser = await launch();
});

after(async () => {
  await listen?.stop();
  await browser?.close();
});

test("browser and CLI chat peer to peer", {timeout: 180_000}, async () => {
  const carol = new CLI(uniq("carol"));
  dan = await User.open(browser, uniq("dan"));
  await guard(users, "cli", async () => {
    await carol.run("signup", carol.name);
    await dan.signup();
    await dan.page.getByTestId("add-contact").fill(carol.name);
    await dan.page.getByTestId("add").click();
    await dan.contact(carol.name).waitFor({timeout: WAIT});
    await carol.run("accept", dan.name);

    // carol stays online; dan sees her online and opens the conversation.
    listen = carol.listen();
    await dan.page.locator(`[data-contact="${carol.name}"][data-presence="online"]`).waitFor({timeout: WAIT});
    const t0 = performance.now();
    await dan.open(carol.name);
    await dan.page.locator(`#conv-head[data-path="direct"]`).waitFor({timeout: 60_000});
    figure("time to a direct path, browser to CLI (from opening the conversation)", Math.round(performance.now() - t0), "ms");
    figure("direct path round trip (header)", await dan.page.locator("#conv-path").innerText());

    const stored0 = await metric("natter_messages_total");
    const turn0 = await metric("natter_turn_relayed_bytes_total").catch(() => 0);

    // dan → carol.
    const toCarol = secret("browser to cli");
    await dan.send(toCarol);
    const got = await listen.waitFor((e) => e.type === "message" && e.text === toCarol, `the message "${toCarol}"`);
    assert.equal(got.from, dan.name);
    assert.equal(got.path, "direct", `the CLI got it over ${got.path}`);
    await dan.page.locator(`[data-message][data-state="delivered"], [data-message][data-state="read"]`, {hasText: toCarol}).waitFor({timeout: WAIT});

    // carol → dan: natter send is handed to the running listen, which has the channel.
    const toDan = secret("cli to browser");
    const t1 = performance.now();
    const sent = await carol.run("send", "--json", dan.name, toDan);
    await dan.message(toDan).waitFor({timeout: WAIT});
    figure("CLI send to browser display (direct)", Math.round(performance.now() - t1), "ms");
    assert.match(sent.out, /"path":"direct"|delivered|peer/, `natter send said: ${sent.out}`);
    assert.equal(await dan.message(toDan).getAttribute("data-from"), carol.name);

    // A few more each way, still direct.
    for (let i = 0; i < 3; i++) {
      const a = secret(`browser to cli ${i}`);
      await dan.send(a);
      await listen.waitFor((e) => e.type === "message" && e.text === a, `the message "${a}"`);
      const b = secret(`cli to browser ${i}`);
      await carol.run("send", dan.name, b);
      await dan.message(b).waitFor({timeout: WAIT});
    }
    assert.equal(await dan.page.locator("#conv-head").getAttribute("data-path"), "direct");

    const stored1 = await metric("natter_messages_total");
    const turn1 = await metric("natter_turn_relayed_bytes_total").catch(() => 0);
    assert.equal(stored1, stored0, "natterd stored or relayed messages of a direct conversation (natter_messages_total moved)");
    assert.equal(turn1, turn0, "natterd's TURN relay carried the conversation (natter_turn_relayed_bytes_total moved)");
    figure("natter_messages_total during the direct chat", `${stored0} → ${stored1}`);

    // Nothing crossed dan's WebSocket in clear.
    for (const text of [toCarol, toDan]) assert.equal(dan.framesHold(text), null, `a WebSocket frame holds "${text}"`);
  }).catch(async (err) => {
    console.error(`--- natter listen (${carol.name}) ---\n${listen?.events.map((e) => JSON.stringify(e)).join("\n")}\n${listen?.stderr()}`);
    throw err;
  });
  await dan.close();
});
