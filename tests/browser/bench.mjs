// Cold start to first verified head of the web demo in headless Chromium.
//
//   node bench.mjs [--runs N] [--transport websocket|webrtc|both] [--url http://127.0.0.1:PORT/]
//                  [--timeout-ms MS]
//
// Without --url it starts a devnet (4 validators, no forger) and the demo
// server, and stops them at the end. Waits until the chain has height >= 3,
// then N times (default 7, at least 5) opens /?transport=T&forger=0 in a
// brand-new Chromium profile (nothing cached) and reads
// window.tiernetDemo.firstHeadMs (performance.now() at the first verified
// head, i.e. from navigation start: page, wasm, connection, chain proof).
// Then, in the same profile, waits until the page has saved its trust to
// IndexedDB and reloads it: the warm start (from the saved trust, no chain
// proof from the genesis; the run fails if the reload did not resume).
// Prints each run, the cold and warm medians/min/max, and the size of the wasm binary the
// server serves (/pkg/tiernet_wasm_bg.wasm, raw and gzip -9). Exits non-zero
// on any failure.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants as zlib } from 'node:zlib';

import {
  PKG_DIR,
  launchBrowser,
  median,
  pageState,
  describeState,
  startDevnet,
  startServer,
  waitFor,
  waitForChainHeight,
} from './lib.mjs';

function usage(message) {
  if (message) console.error(`bench.mjs: ${message}`);
  console.error(
    'usage: node bench.mjs [--runs N (>= 5, default 7)] [--transport websocket|webrtc|both] [--url URL] [--timeout-ms MS]',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { runs: 7, transports: ['websocket', 'webrtc'], url: null, timeoutMs: 90_000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      if (eq > 0) return arg.slice(eq + 1);
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--runs': {
        const v = value();
        if (!/^\d+$/.test(v)) usage(`bad --runs ${v}`);
        opts.runs = Number(v);
        if (opts.runs < 5) usage('--runs must be at least 5');
        break;
      }
      case '--transport': {
        const v = value();
        if (v === 'both' || v === 'all') opts.transports = ['websocket', 'webrtc'];
        else if (v === 'websocket' || v === 'webrtc') opts.transports = [v];
        else usage(`bad --transport ${v}`);
        break;
      }
      case '--url': {
        const v = value();
        opts.url = v.endsWith('/') ? v : `${v}/`;
        break;
      }
      case '--timeout-ms': {
        const v = value();
        if (!/^\d+$/.test(v)) usage(`bad --timeout-ms ${v}`);
        opts.timeoutMs = Number(v);
        break;
      }
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  return opts;
}

function fmt(ms) {
  return `${Math.round(ms)} ms`;
}

/** Reads the first verified head of the page (and whether it resumed from saved trust). */
function firstHead(page, what, timeoutMs) {
  return waitFor(
    page,
    what,
    () => {
      const d = window.tiernetDemo;
      if (d && d.error) return { error: d.error };
      return d && d.started && d.firstHeadMs !== null && d.head
        ? { ms: d.firstHeadMs, height: d.head.height, resumedFrom: d.resumedFrom }
        : null;
    },
    undefined,
    { timeoutMs, intervalMs: 25 },
  ).then((result) => {
    if (result.error) throw new Error(`the page shows an error: ${result.error}`);
    return result;
  });
}

/** One cold start in a new profile, then one warm start (reload) in the same profile. */
async function oneRun(url, transport, timeoutMs) {
  const browser = await launchBrowser();
  try {
    const page = browser.page;
    try {
      await page.goto(new URL(`?transport=${transport}&forger=0`, url).href, { waitUntil: 'domcontentloaded', timeout: 30_000 });
      const cold = await firstHead(page, `the first verified head over ${transport}`, timeoutMs);
      if (cold.resumedFrom !== null) throw new Error('a new profile resumed from saved trust');
      await waitFor(
        page,
        'the trust saved to IndexedDB',
        (h) => (window.tiernetDemo.savedHeight ?? -1) >= h,
        cold.height,
        { timeoutMs: 30_000, intervalMs: 25 },
      );
      await page.reload({ waitUntil: 'domcontentloaded', timeout: 30_000 });
      const warm = await firstHead(page, `the first verified head after a reload over ${transport}`, timeoutMs);
      if (warm.resumedFrom === null) throw new Error('the reload did not start from the saved trust');
      return { cold, warm };
    } catch (err) {
      console.error(`--- page state ---\n${describeState(await pageState(page))}`);
      console.error(`--- Chromium console (last 80) ---\n${browser.console.slice(-80).join('\n')}`);
      throw err;
    }
  } finally {
    await browser.close();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let net = null;
  let server = null;
  try {
    let url = opts.url;
    if (!url) {
      if (!existsSync(join(PKG_DIR, 'tiernet_wasm.js'))) {
        throw new Error(`${PKG_DIR}/tiernet_wasm.js is missing: build the wasm package with scripts/wasm-pkg`);
      }
      console.log('starting a devnet (4 validators, no forger) and the demo server …');
      net = await startDevnet({ validators: 4, forger: null });
      server = await startServer({ devnetDir: net.dir });
      url = server.url;
    }
    const res = await fetch(new URL('devnet.json', url), { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GET ${new URL('devnet.json', url)}: HTTP ${res.status} ${(await res.text()).trim()}`);
    const devnet = await res.json();
    const height = await waitForChainHeight(devnet, 3, 90_000);
    console.log(`demo ${url}; chain at height ${height}`);

    const summaries = [];
    for (const transport of opts.transports) {
      const cold = [];
      const warm = [];
      for (let i = 1; i <= opts.runs; i++) {
        const r = await oneRun(url, transport, opts.timeoutMs);
        cold.push(r.cold.ms);
        warm.push(r.warm.ms);
        console.log(
          `run ${i}/${opts.runs} ${transport}: cold ${fmt(r.cold.ms)} to first verified head (height ${r.cold.height}); ` +
            `warm ${fmt(r.warm.ms)} (resumed from ${r.warm.resumedFrom}, head ${r.warm.height})`,
        );
      }
      for (const [what, times] of [['cold', cold], ['warm', warm]]) {
        const line =
          `${what} start to first verified head (${transport}): median ${fmt(median(times))}, ` +
          `min ${fmt(Math.min(...times))}, max ${fmt(Math.max(...times))} over ${times.length} runs`;
        console.log(line);
        summaries.push(line);
      }
    }

    // The module the page loaded: fetched from the demo server, so --url
    // measures what that server serves.
    const wasmUrl = new URL('pkg/tiernet_wasm_bg.wasm', url).href;
    const wasmRes = await fetch(wasmUrl, { signal: AbortSignal.timeout(30_000) });
    if (!wasmRes.ok) throw new Error(`GET ${wasmUrl}: HTTP ${wasmRes.status}`);
    const raw = Buffer.from(await wasmRes.arrayBuffer());
    const gz = gzipSync(raw, { level: zlib.Z_BEST_COMPRESSION });
    summaries.push(
      `tiernet_wasm_bg.wasm: ${raw.length} bytes raw (${(raw.length / 1024).toFixed(1)} KiB), ` +
        `${gz.length} bytes gzip -9 (${(gz.length / 1024).toFixed(1)} KiB)`,
    );
    console.log('\n' + summaries.join('\n'));
  } finally {
    await server?.stop();
    await net?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
