// Load a page in a real headless Chromium (Debian's `chromium`, driven by playwright-core) and print what its
// script recorded, for integration tests to read. Needs `make node` first and /usr/bin/chromium (.ci/run installs it).
//
//   node tests/node/browser_sse.mjs URL [--timeout-ms 30000] [--chromium /usr/bin/chromium]
//
// Waits until the page sets `window.done = true`, then prints one JSON line:
//   {"events": window.events, "status": <the #status element's text>, "title": document.title}
// On failure (no `window.done` in time, a navigation error) prints {"error": ..., "events": ...} and exits 1.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

function parseArgs(argv) {
  const args = { url: undefined, timeoutMs: 30000, executablePath: process.env.CHROMIUM || "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--timeout-ms") args.timeoutMs = Number(argv[++i]);
    else if (arg === "--chromium") args.executablePath = argv[++i];
    else if (!arg.startsWith("--") && args.url === undefined) args.url = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (!args.url) throw new Error("usage: browser_sse.mjs URL [--timeout-ms N] [--chromium PATH]");
  return args;
}

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const profile = mkdtempSync(join(tmpdir(), "pyrie-chromium-"));
  // A fresh profile, and none of Chromium's own network chatter (there is no internet here).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  let page;
  try {
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(args.url, { timeout: args.timeoutMs });
    await page.waitForFunction(() => window.done === true, null, { timeout: args.timeoutMs });
    const result = await page.evaluate(() => ({
      events: window.events,
      status: document.getElementById("status")?.textContent ?? null,
      title: document.title,
    }));
    emit(result);
  } catch (err) {
    const events = page ? await page.evaluate(() => window.events ?? null).catch(() => null) : null;
    emit({ error: String(err?.message ?? err), events });
    process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  emit({ error: String(err?.message ?? err) });
  process.exitCode = 2;
});
