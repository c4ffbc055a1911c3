// Files between two browsers: one dropped onto the conversation and one
// picked with the file input; the other side downloads the first (same
// bytes) and sees the image inline. Neither the file's name nor its
// contents cross a WebSocket in clear.

import {test, before, after} from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import zlib from "node:zlib";
import {launch, User, uniq, secret, befriend, guard, figure, screenshot, WAIT} from "./lib.mjs";

let browser, hana, ivan;
const users = () => [hana, ivan];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("a dropped file and a picked image reach the other browser", {timeout: 180_000}, async () => {
  hana = await User.open(browser, uniq("hana"));
  ivan = await User.open(browser, uniq("ivan"));
  await guard(users, "files", async () => {
    await hana.signup();
    await ivan.signup();
    await befriend(hana, ivan);
    await hana.open(ivan.name);
    await ivan.open(hana.name);
    // A direct channel first, so that the first file goes peer to peer.
    await hana.send(secret("before the files"));
    await hana.page.locator(`#conv-head[data-path="direct"]`).waitFor({timeout: 60_000});

    // A text file, dropped: distinctive name and contents, a few hundred kB.
    const name = `${secret("notes")}.txt`;
    const line = secret("file contents line");
    const body = Buffer.from(Array.from({length: 6000}, (_, i) => `${i} ${line}\n`).join(""));
    const t0 = performance.now();
    const dt = await hana.page.evaluateHandle(({name, b64}) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const d = new DataTransfer();
      d.items.add(new File([bytes], name, {type: "text/plain"}));
      return d;
    }, {name, b64: body.toString("base64")});
    await hana.page.locator("#conv").dispatchEvent("dragenter", {dataTransfer: dt});
    await hana.page.locator("#drop:not([hidden])").waitFor({timeout: WAIT});
    await hana.page.locator("#conv").dispatchEvent("drop", {dataTransfer: dt});
    const mine = hana.page.locator(`[data-message] .file[data-file="${name}"]`);
    await mine.waitFor({timeout: WAIT});

    const theirs = ivan.page.locator(`[data-message][data-from="${hana.name}"] .file[data-file="${name}"]`);
    await theirs.waitFor({timeout: WAIT});
    figure(`file of ${(body.length / 1000).toFixed(0)} kB sent and shown`, Math.round(performance.now() - t0), "ms");
    // Sent over the direct channel, its chunks are on no server: they wait
    // in ivan's browser storage, and a reload does not lose them.
    const path = await hana.page.locator(`[data-message]`, {has: hana.page.locator(`.file[data-file="${name}"]`)}).getAttribute("data-path");
    assert.equal(path, "direct", "the dropped file went through natterd");
    await ivan.page.reload();
    await theirs.waitFor({timeout: WAIT});
    const [download] = await Promise.all([
      ivan.page.waitForEvent("download", {timeout: WAIT}),
      theirs.getByTestId("download").click(),
    ]);
    assert.equal(download.suggestedFilename(), name);
    const got = fs.readFileSync(await download.path());
    assert.ok(got.equals(body), `the downloaded file differs (${got.length} bytes, sent ${body.length})`);

    // An image, picked with the file input: it shows inline on both sides.
    const imgName = `${secret("photo")}.png`;
    await hana.page.getByTestId("file-input").setInputFiles({name: imgName, mimeType: "image/png", buffer: png(64, 40)});
    const img = ivan.page.locator(`[data-message][data-from="${hana.name}"] .file[data-file="${imgName}"] img[data-testid="image"]`);
    await img.waitFor({timeout: WAIT});
    await ivan.page.waitForFunction((el) => el.complete && el.naturalWidth === 64, await img.elementHandle(), {timeout: WAIT});
    await hana.page.locator(`.file[data-file="${imgName}"] img[data-testid="image"]`).waitFor({timeout: WAIT});
    await hana.page.locator(`[data-message][data-state="delivered"], [data-message][data-state="read"]`, {has: hana.page.locator(`.file[data-file="${imgName}"]`)}).waitFor({timeout: WAIT});

    // A sound plays in the page.
    const wavName = `${secret("voice note")}.wav`;
    await hana.page.getByTestId("file-input").setInputFiles({name: wavName, mimeType: "audio/wav", buffer: wav(0.3)});
    const audio = ivan.page.locator(`[data-message][data-from="${hana.name}"] .file[data-file="${wavName}"] audio[data-testid="audio"]`);
    await audio.waitFor({timeout: WAIT});
    await ivan.page.waitForFunction((el) => el.readyState >= 1 && el.duration > 0.25 && el.duration < 0.35, await audio.elementHandle(), {timeout: WAIT});

    await ivan.page.setViewportSize({width: 360, height: 740});
    await ivan.page.locator("#messages").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await screenshot(ivan.page, "phone-files");
    await hana.page.locator("#messages").evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await screenshot(hana.page, "desktop-files");

    for (const u of users()) {
      for (const s of [name, line]) assert.equal(u.framesHold(s), null, `${u.name}'s WebSocket carried "${s}" in clear`);
    }
  });
  await hana.close();
  await ivan.close();
});

/** png makes a w×h RGB PNG: a gradient. */
function png(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = (x * 4) & 255;
      raw[row + 2 + x * 3] = (y * 6) & 255;
      raw[row + 3 + x * 3] = 200;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

/** wav makes a mono 8 kHz 8-bit WAV of secs seconds: a 440 Hz tone. */
function wav(secs) {
  const n = Math.round(8000 * secs);
  const b = Buffer.alloc(44 + n);
  b.write("RIFF", 0);
  b.writeUInt32LE(36 + n, 4);
  b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(8000, 24);
  b.writeUInt32LE(8000, 28);
  b.writeUInt16LE(1, 32);
  b.writeUInt16LE(8, 34);
  b.write("data", 36);
  b.writeUInt32LE(n, 40);
  for (let i = 0; i < n; i++) b[44 + i] = 128 + Math.round(60 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  return b;
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
