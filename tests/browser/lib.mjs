// Shared helpers of the browser tests and the benchmark: a devnet in a temp
// dir, the web-demo server, headless Chromium, and waits that fail with what
// the page was showing.
//
// Every process started here is stopped by its stop()/close(), and killed on
// process exit (or SIGINT/SIGTERM) should a test forget or crash.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '..', '..');
export const NODE_BIN = process.env.TIERNET_NODE_BIN || join(ROOT, 'target', 'debug', 'tiernet-node');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const PKG_DIR = resolve(process.env.TIERNET_WASM_PKG || join(ROOT, 'bindings-wasm', 'pkg'));
export const SCREENSHOT_DIR = join(ROOT, 'target', 'browser');

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const verbose = !!process.env.TIERNET_TEST_VERBOSE;

// ---------------------------------------------------------------- cleanup on exit

// Synchronous last-resort cleanups, run on exit.
const exitCleanups = new Set();

function runExitCleanups() {
  for (const fn of [...exitCleanups]) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
  exitCleanups.clear();
}

process.on('exit', runExitCleanups);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    runExitCleanups();
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal] || 0));
  });
}

function removeDir(dir) {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

// ---------------------------------------------------------------- child processes

/** Keeps the last `limit` lines of a stream (draining it so the child never blocks). */
function tail(stream, name, limit = 200, onLine = () => {}) {
  const lines = [];
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const line of parts) {
      lines.push(line);
      if (lines.length > limit) lines.shift();
      if (verbose) process.stderr.write(`[${name}] ${line}\n`);
      onLine(line);
    }
  });
  return () => [...lines, ...(partial ? [partial] : [])].join('\n');
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs` if still alive.
 * Resolves once it has exited.
 */
function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
    try {
      child.kill('SIGTERM');
    } catch {
      clearTimeout(timer);
      resolvePromise();
    }
  });
}

function exitedText(child) {
  return child.signalCode ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`;
}

// ---------------------------------------------------------------- devnet

/**
 * Starts `tiernet-node devnet` in a fresh temp dir.
 *
 * @param {{validators?: number, forger?: string|null, timeoutMs?: number}} options
 *   forger: the value of `--forger` (e.g. 'all'), or null for no forger.
 * @returns {Promise<{dir: string, devnet: object, proc: import('node:child_process').ChildProcess,
 *   output: () => string, alive: () => boolean, stop: () => Promise<void>}>}
 */
export async function startDevnet({ validators = 4, forger = null, timeoutMs = 120_000 } = {}) {
  if (!existsSync(NODE_BIN)) {
    throw new Error(
      `tiernet-node not found at ${NODE_BIN}: build it with \`cargo build -p tiernet-node --features testing\` (the devnet's --forger needs the feature) or set TIERNET_NODE_BIN`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'tiernet-devnet-'));
  const args = ['devnet', '--validators', String(validators), '--base-port', '0', '--dir', dir];
  if (forger) args.push('--forger', forger);
  const proc = spawn(NODE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  const killNow = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    removeDir(dir);
  };
  exitCleanups.add(killNow);

  let announced = false;
  const stdout = tail(proc.stdout, 'devnet', 200, (line) => {
    if (line.startsWith('devnet: ')) announced = true;
  });
  const stderr = tail(proc.stderr, 'devnet!', 200);
  const output = (lines = 40) => {
    const last = (text) => text.replace(/\x1b\[[0-9;]*m/g, '').split('\n').slice(-lines).join('\n');
    return `--- devnet stdout (last ${lines} lines) ---\n${last(stdout())}\n--- devnet stderr (last ${lines} lines) ---\n${last(stderr())}`;
  };
  let spawnError = null;
  proc.on('error', (err) => {
    spawnError = err;
  });

  let stopped = null;
  const stop = () => {
    if (!stopped) {
      stopped = stopChild(proc, 5000).then(() => {
        removeDir(dir);
        exitCleanups.delete(killNow);
      });
    }
    return stopped;
  };

  const command = `${NODE_BIN} ${args.join(' ')}`;
  try {
    const deadline = Date.now() + timeoutMs;
    const file = join(dir, 'devnet.json');
    for (;;) {
      if (spawnError) throw new Error(`cannot run ${command}: ${spawnError.message}`);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`the devnet exited (${exitedText(proc)}) before it was up: ${command}\n${output()}`);
      }
      if (announced && existsSync(file)) {
        try {
          const devnet = JSON.parse(readFileSync(file, 'utf8'));
          return {
            dir,
            devnet,
            proc,
            output,
            alive: () => proc.exitCode === null && proc.signalCode === null,
            stop,
          };
        } catch {
          /* being written; try again */
        }
      }
      if (Date.now() > deadline) {
        throw new Error(`the devnet did not write devnet.json within ${timeoutMs / 1000} s: ${command}\n${output()}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The chain height as a validator's telemetry `/chain` reports it. */
export async function chainHeight(devnet) {
  let lastError = null;
  for (const node of devnet.nodes || []) {
    if (!node.telemetry) continue;
    try {
      const res = await fetch(`${node.telemetry}/chain`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return (await res.json()).height;
      lastError = new Error(`${node.telemetry}/chain: HTTP ${res.status}`);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError || new Error('devnet.json lists no telemetry address');
}

/** Waits until the devnet's chain reaches `height`. */
export async function waitForChainHeight(devnet, height, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  let lastError = null;
  while (Date.now() < deadline) {
    try {
      last = await chainHeight(devnet);
      if (last >= height) return last;
    } catch (err) {
      lastError = err;
    }
    await sleep(250);
  }
  throw new Error(
    `the devnet did not reach height ${height} within ${timeoutMs / 1000} s (last height ${last}` +
      `${lastError ? `, last error: ${lastError.message}` : ''})`,
  );
}

// ---------------------------------------------------------------- a follower node

/**
 * Starts `tiernet-node run` as a full node (no ZSI, not a validator) of the
 * devnet in `devnetDir`, bootstrapped to the validators' TCP addresses, with
 * a WebSocket listener for browsers on 127.0.0.1:`wsPort` (0: a free port).
 * `dataDir` keeps its key and store across restarts (default: a new temp dir,
 * removed by stop()).
 * `webrtc` is its WebRTC-direct address (with certhash).
 * @returns {Promise<{ws: string, webrtc: string, wsPort: number, peerId: string, dataDir: string, proc: object,
 *   output: () => string, kill: () => Promise<void>, stop: () => Promise<void>}>}
 */
export async function startFollower({ devnetDir, devnet, wsPort = 0, dataDir = null, timeoutMs = 60_000 }) {
  const ownDir = !dataDir;
  const dir = dataDir || mkdtempSync(join(tmpdir(), 'tiernet-follower-'));
  const args = [
    '--data-dir', dir,
    '--genesis', join(devnetDir, 'genesis.json'),
    '--listen', '/ip4/127.0.0.1/tcp/0',
    '--listen-ws', `/ip4/127.0.0.1/tcp/${wsPort}/ws`,
    '--listen-webrtc', '/ip4/127.0.0.1/udp/0/webrtc-direct',
    '--telemetry', '127.0.0.1:0',
  ];
  for (const node of devnet.nodes || []) {
    const tcp = (node.addrs || []).find((a) => a.includes('/tcp/') && !a.includes('/ws'));
    if (tcp) args.push('--bootstrap', tcp);
  }
  args.push('run');
  const proc = spawn(NODE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const killNow = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    if (ownDir) removeDir(dir);
  };
  exitCleanups.add(killNow);
  let ws = null;
  let webrtc = null;
  let peerId = null;
  const stdout = tail(proc.stdout, 'follower', 200, (line) => {
    const listening = /^listening: (\S+\/ws\/p2p\/\S+)$/.exec(line);
    if (listening && !ws) ws = listening[1];
    const rtc = /^listening: (\S+\/webrtc-direct\/certhash\/\S+)$/.exec(line);
    if (rtc && !webrtc) webrtc = rtc[1];
    const id = /^peer_id: (\S+)$/.exec(line);
    if (id) peerId = id[1];
  });
  const stderr = tail(proc.stderr, 'follower!', 200);
  const output = () => `--- follower stdout ---\n${stdout()}\n--- follower stderr ---\n${stderr()}`;
  const exited = new Promise((resolveExit) => proc.once('exit', resolveExit));
  let stopped = null;
  const finish = (signal) => {
    if (!stopped) {
      stopped = (signal === 'SIGKILL'
        ? (proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL'), exited)
        : stopChild(proc, 5000)
      ).then(() => {
        if (ownDir) removeDir(dir);
        exitCleanups.delete(killNow);
      });
    }
    return stopped;
  };
  try {
    const deadline = Date.now() + timeoutMs;
    while (!ws || !webrtc) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`the follower exited (${exitedText(proc)}) before listening: ${NODE_BIN} ${args.join(' ')}\n${output()}`);
      }
      if (Date.now() > deadline) throw new Error(`the follower printed no /ws or WebRTC address within ${timeoutMs / 1000} s\n${output()}`);
      await sleep(50);
    }
    const port = Number(/\/tcp\/(\d+)\/ws/.exec(ws)[1]);
    return {
      ws,
      webrtc,
      wsPort: port,
      peerId,
      dataDir: dir,
      proc,
      output,
      /** SIGKILL: a crash; resolves once it has exited. */
      kill: () => finish('SIGKILL'),
      stop: () => finish('SIGTERM'),
    };
  } catch (err) {
    await finish('SIGKILL');
    throw err;
  }
}

// ---------------------------------------------------------------- web-demo server

/**
 * Starts web-demo/serve.mjs on a free port.
 * @returns {Promise<{url: string, proc: import('node:child_process').ChildProcess, output: () => string, stop: () => Promise<void>}>}
 */
export async function startServer({ devnetDir, pkgDir = PKG_DIR, timeoutMs = 15_000 }) {
  const args = [join(ROOT, 'web-demo', 'serve.mjs'), '--devnet-dir', devnetDir, '--port', '0', '--host', '127.0.0.1'];
  if (pkgDir) args.push('--pkg-dir', pkgDir);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const killNow = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  exitCleanups.add(killNow);
  let url = null;
  const stdout = tail(proc.stdout, 'serve', 100, (line) => {
    const m = /^web-demo: (http:\/\/\S+)$/.exec(line);
    if (m && !url) url = m[1];
  });
  const stderr = tail(proc.stderr, 'serve!', 100);
  const output = () => `--- serve.mjs stdout ---\n${stdout()}\n--- serve.mjs stderr ---\n${stderr()}`;
  let stopped = null;
  const stop = () => {
    if (!stopped) stopped = stopChild(proc, 5000).then(() => exitCleanups.delete(killNow));
    return stopped;
  };
  try {
    const deadline = Date.now() + timeoutMs;
    while (!url) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`serve.mjs exited (${exitedText(proc)}) before listening\n${output()}`);
      }
      if (Date.now() > deadline) throw new Error(`serve.mjs did not print its URL within ${timeoutMs / 1000} s\n${output()}`);
      await sleep(50);
    }
    return { url, proc, output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------- Chromium

let playwright = null;
async function loadPlaywright() {
  if (!playwright) {
    try {
      playwright = await import('playwright-core');
    } catch (err) {
      throw new Error(`playwright-core is not installed: run \`npm ci\` in tests/browser (${err.message})`);
    }
  }
  return playwright;
}

/**
 * Launches headless Chromium with a fresh profile in a temp dir.
 * @returns {Promise<{context: import('playwright-core').BrowserContext, page: import('playwright-core').Page,
 *   console: string[], close: () => Promise<void>}>}
 *   console collects the page's console messages and errors.
 */
export async function launchBrowser({ viewport = { width: 1280, height: 800 } } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const { chromium } = await loadPlaywright();
  const userDataDir = mkdtempSync(join(tmpdir(), 'tiernet-chromium-'));
  const removeProfile = () => removeDir(userDataDir);
  exitCleanups.add(removeProfile);
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      timeout: 60_000,
    });
  } catch (err) {
    removeProfile();
    exitCleanups.delete(removeProfile);
    throw new Error(`cannot launch Chromium (${CHROMIUM}): ${err.message}`);
  }
  const consoleLines = [];
  const record = (line) => {
    consoleLines.push(line);
    if (consoleLines.length > 2000) consoleLines.shift();
    if (verbose) process.stderr.write(`[chromium] ${line}\n`);
  };
  const watch = (page) => {
    page.on('console', (msg) => record(`[${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (err) => record(`[pageerror] ${err.message}`));
    page.on('requestfailed', (req) => record(`[requestfailed] ${req.url()}: ${req.failure()?.errorText}`));
    page.on('worker', (worker) => worker.on('console', (msg) => record(`[worker ${msg.type()}] ${msg.text()}`)));
  };
  context.on('page', watch);
  const page = context.pages()[0] || (await context.newPage());
  watch(page);
  let closed = null;
  const close = () => {
    if (!closed) {
      closed = context
        .close()
        .catch(() => {})
        .then(() => {
          removeProfile();
          exitCleanups.delete(removeProfile);
        });
    }
    return closed;
  };
  return { context, page, console: consoleLines, close };
}

// ---------------------------------------------------------------- waits on the page

/** What the page shows, for failure messages. */
export async function pageState(page) {
  try {
    return await page.evaluate(() => {
      const d = window.tiernetDemo;
      const text = (id) => document.getElementById(id)?.textContent?.trim() ?? null;
      if (!d) return { note: 'window.tiernetDemo is not defined', status: text('status') };
      return {
        error: d.error,
        status: text('status'),
        started: d.started,
        head: d.head,
        firstHeadMs: d.firstHeadMs,
        peers: d.peers,
        rejected: d.rejected,
        lastEvents: d.events.slice(-15),
        lookup: text('lookup-result'),
      };
    });
  } catch (err) {
    return { note: `cannot read the page: ${err.message}` };
  }
}

export function describeState(state) {
  return JSON.stringify(state, null, 2);
}

/**
 * Polls `fn(arg)` in the page until it returns a truthy value; returns it.
 * On timeout throws an Error naming `what` with the page's error, status,
 * peers and last events.
 */
export async function waitFor(
  page,
  what,
  fn,
  arg,
  { timeoutMs = 60_000, intervalMs = 250, extra, failOnPageError = true } = {},
) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  let pageError = null;
  for (;;) {
    try {
      const value = await page.evaluate(fn, arg);
      if (value) return value;
      // The page shows an error (e.g. the wasm did not load, start() failed):
      // waiting longer will not help.
      if (failOnPageError) pageError = await page.evaluate(() => window.tiernetDemo?.error ?? null);
    } catch (err) {
      lastError = err;
    }
    if (pageError || Date.now() > deadline) break;
    await sleep(intervalMs);
  }
  const state = await pageState(page);
  const more = extra ? `\n${typeof extra === 'function' ? extra() : extra}` : '';
  const why = pageError ? 'the page shows an error' : `timed out after ${timeoutMs / 1000} s`;
  throw new Error(
    `${why} while waiting for ${what}\n` +
      `page error: ${state.error ?? '(none)'}; status: ${state.status ?? '?'}\n` +
      `${lastError ? `last evaluate error: ${lastError.message}\n` : ''}` +
      `page state: ${describeState(state)}${more}`,
  );
}

/** Waits for a verified head at or above `minHeight`; returns it. */
export function waitForHead(page, minHeight, opts) {
  return waitFor(
    page,
    `a verified head at height >= ${minHeight}`,
    (min) => {
      const h = window.tiernetDemo?.head;
      return h && h.height >= min ? h : null;
    },
    minHeight,
    opts,
  );
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, name);
  await page.screenshot({ path, fullPage: false });
  return path;
}

// ---------------------------------------------------------------- misc

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export { sleep };
