// Runs last (test/webtest sorts the files): no message text, file name or
// file contents that the other tests sent is in natterd's data folder (its
// database, its write-ahead log, its file chunks) in clear. The tests check
// the page's WebSocket frames themselves as they go.

import {test} from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {env} from "./lib.mjs";

test("no plaintext on natterd's disk", () => {
  const file = path.join(env.artifacts, "plaintexts.txt");
  const needles = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  assert.ok(needles.length > 0, "the other tests recorded no plaintexts (did they run first?)");
  let files = 0, bytes = 0;
  const found = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const body = fs.readFileSync(p);
        files++;
        bytes += body.length;
        for (const n of needles) if (body.includes(Buffer.from(n))) found.push(`${p}: ${n}`);
      }
    }
  };
  walk(env.data);
  console.log(`figure: plaintext search: ${needles.length} texts in ${files} files (${(bytes / 1e6).toFixed(1)} MB) of natterd's data`);
  assert.deepEqual(found, [], "plaintext found on natterd's disk");
});
