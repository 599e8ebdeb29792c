// End-to-end: the web demo in headless Chromium against a live devnet of 4
// validators plus a forging node (`--forger all`). One devnet and one server
// for the whole file; each test gets its own fresh browser profile.
//
//   cd tests/browser && npm ci && npm test
//
// Needs target/debug/tiernet-node built with `--features testing` (for
// --forger; or TIERNET_NODE_BIN), bindings-wasm/pkg
// (scripts/wasm-pkg; or TIERNET_WASM_PKG) and /usr/bin/chromium (or
// CHROMIUM_PATH).
// TIERNET_TEST_FORGER: the --forger value (default 'all'; empty: no forger,
// and the forger checks are skipped). TIERNET_TEST_VERBOSE=1 echoes the
// devnet's, the server's and Chromium's output.

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import zlib from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  PKG_DIR,
  launchBrowser,
  pageState,
  describeState,
  screenshot,
  startDevnet,
  startFollower,
  startServer,
  waitFor,
  waitForHead,
} from './lib.mjs';

const FORGER = process.env.TIERNET_TEST_FORGER ?? 'all';

let net = null;
let server = null;

before(async () => {
  assert.ok(
    existsSync(join(PKG_DIR, 'tiernet_wasm.js')),
    `${PKG_DIR}/tiernet_wasm.js is missing: build the wasm package with scripts/wasm-pkg`,
  );
  net = await startDevnet({ validators: 4, forger: FORGER || null });
  server = await startServer({ devnetDir: net.dir });
});

after(async () => {
  await server?.stop();
  await net?.stop();
});

/**
 * A source that sends one ICE binding request (a fresh ufrag, signed as a
 * browser signs it) to UDP `port` on loopback and answers nothing, as a
 * spoofed source would. Resolves to `{ answered(), close() }`: `answered()`
 * says whether the node answered the request (a binding success with its
 * transaction id), which it does only when it started a connection attempt
 * for the source.
 */
async function deafSource(port) {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const ufrag = `libp2p+webrtc+v1/${randomBytes(16).toString('hex')}`;
  const id = randomBytes(12);
  const attribute = (type, value) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(value.length, 2);
    return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
  };
  const header = (length) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(0x0001, 0); // binding request
    h.writeUInt16BE(length, 2);
    h.writeUInt32BE(0x2112a442, 4); // magic cookie
    id.copy(h, 8);
    return h;
  };
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1_845_501_695);
  const tieBreaker = randomBytes(8);
  let body = Buffer.concat([
    attribute(0x0006, Buffer.from(`${ufrag}:${ufrag}`)), // USERNAME
    attribute(0x0024, priority), // PRIORITY
    attribute(0x802a, tieBreaker), // ICE-CONTROLLING
  ]);
  // MESSAGE-INTEGRITY: HMAC-SHA1 keyed with the password (the ufrag), the
  // length counting the attribute itself; then FINGERPRINT likewise.
  const mac = createHmac('sha1', ufrag).update(Buffer.concat([header(body.length + 24), body])).digest();
  body = Buffer.concat([body, attribute(0x0008, mac)]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((zlib.crc32(Buffer.concat([header(body.length + 8), body])) ^ 0x5354554e) >>> 0);
  body = Buffer.concat([body, attribute(0x8028, crc)]);
  let answered = false;
  socket.on('message', (m) => {
    if (m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(id)) answered = true;
  });
  socket.send(Buffer.concat([header(body.length), body]), port, '127.0.0.1');
  return { answered: () => answered, close: () => socket.close() };
}

/**
 * Opens `path` of the demo in a fresh browser and runs `fn(page, browser)`.
 * On failure prints the page's state, Chromium's console and the devnet's
 * output, then rethrows. The browser is always closed.
 */
async function withDemo(t, path, fn) {
  const browser = await launchBrowser();
  try {
    await browser.page.goto(new URL(path, server.url).href, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    await fn(browser.page, browser);
  } catch (err) {
    const state = await pageState(browser.page);
    const lines = [
      `--- ${t.name}: failed: ${err.message.split('\n')[0]}`,
      `--- page state ---\n${describeState(state)}`,
      `--- Chromium console (last 150 of ${browser.console.length}) ---`,
      ...browser.console.slice(-150),
      net ? (net.alive() ? '--- devnet is running ---' : '--- devnet has EXITED ---') : '',
      net ? net.output(30) : '',
    ];
    process.stderr.write(lines.join('\n') + '\n');
    try {
      await screenshot(browser.page, `failed-${t.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
    } catch {
      /* the page may be gone */
    }
    throw err;
  } finally {
    await browser.close();
  }
}

function connectedPeers(page) {
  return page.evaluate(() => window.tiernetDemo.peers.filter((p) => p.state === 'connected'));
}

/** Checks that every connected peer uses exactly `transport`. */
async function assertTransport(page, transport) {
  // At least one connected peer (the first head needs one).
  const peers = await waitFor(
    page,
    'a connected peer in window.tiernetDemo.peers',
    () => {
      const c = window.tiernetDemo.peers.filter((p) => p.state === 'connected');
      return c.length ? c : null;
    },
    undefined,
    { timeoutMs: 15_000 },
  );
  for (const p of peers) {
    assert.ok(p.transports.length >= 1, `connected peer ${p.peerId} lists no transport: ${JSON.stringify(p)}`);
    assert.ok(
      p.transports.every((x) => x === transport),
      `connected peer ${p.peerId} uses ${JSON.stringify(p.transports)}, expected only '${transport}'`,
    );
  }
  return peers;
}

async function assertHeadShown(page, head) {
  const shown = await waitFor(
    page,
    `#head-height to show ${head.height} or more`,
    (h) => {
      const text = document.getElementById('head-height')?.textContent?.trim();
      return /^\d+$/.test(text || '') && Number(text) >= h ? text : null;
    },
    head.height,
    { timeoutMs: 5_000 },
  );
  assert.ok(Number(shown) >= head.height);
}

async function assertAdvances(page, from, timeoutMs) {
  const later = await waitForHead(page, from + 2, { timeoutMs });
  assert.ok(later.height >= from + 2);
  assert.match(later.hash, /^[0-9a-f]{64}$/, 'head hash is 64 lowercase hex');
  assert.match(later.stateRoot, /^[0-9a-f]{64}$/, 'state root is 64 lowercase hex');
  return later;
}

describe('tiernet web demo in Chromium', { timeout: 600_000 }, () => {
  test('over WebSocket: verified head, advancing, forger rejected', { timeout: 240_000 }, async (t) => {
    await withDemo(t, '/?transport=websocket', async (page) => {
      const head = await waitForHead(page, 1, { timeoutMs: 60_000 });
      t.diagnostic(`first verified head over websocket: height ${head.height}`);
      await assertHeadShown(page, head);
      const peers = await assertTransport(page, 'websocket');
      t.diagnostic(`connected peers: ${peers.length}`);
      const later = await assertAdvances(page, head.height, 30_000);
      t.diagnostic(`head advanced to ${later.height}`);
      // Every connected peer, checked again later on (webrtc never sneaks in).
      await assertTransport(page, 'websocket');

      const forger = net.devnet.forger;
      if (!FORGER) {
        t.diagnostic('TIERNET_TEST_FORGER is empty: no forger, forger checks skipped');
      } else {
        assert.ok(forger && forger.peer_id, `devnet.json has no forger: ${JSON.stringify(net.devnet.forger)}`);
        const rejected = await waitFor(
          page,
          `the forger ${forger.peer_id} in window.tiernetDemo.rejected`,
          (id) => window.tiernetDemo.rejected.find((r) => r.peerId === id) || null,
          forger.peer_id,
          { timeoutMs: 60_000 },
        );
        t.diagnostic(`forger rejected: ${rejected.reason}`);
        const rows = await page.locator('#log li.rejected').count();
        assert.ok(rows >= 1, 'a log entry with class "rejected"');
        const forgerRow = page.locator(`#peers-body tr[data-peer-id="${forger.peer_id}"]`);
        assert.match((await forgerRow.textContent()) || '', /rejected/, 'the forger row says rejected');
        // The client's own view (client.peers(), refreshed every second)
        // says so too, with the reason, and the connection is dropped.
        const own = await waitFor(
          page,
          `client.peers() to report the forger rejected and disconnected`,
          (id) => {
            const p = window.tiernetDemo.peers.find((x) => x.peerId === id);
            return p && p.state === 'rejected' && p.reason && p.transports.length === 0 ? p : null;
          },
          forger.peer_id,
          { timeoutMs: 10_000 },
        );
        t.diagnostic(`client.peers(): forger ${own.state}: ${own.reason}`);
        // The page still follows the chain on the honest peers.
        const state = await pageState(page);
        assert.equal(state.error, null, 'no page error');
      }
      const shot = await screenshot(page, 'demo-websocket.png');
      t.diagnostic(`screenshot ${shot}`);
    });
  });

  test('over WebRTC-direct: verified head, advancing', { timeout: 240_000 }, async (t) => {
    await withDemo(t, '/?transport=webrtc', async (page) => {
      const head = await waitForHead(page, 1, { timeoutMs: 90_000 });
      t.diagnostic(`first verified head over webrtc-direct: height ${head.height}`);
      await assertHeadShown(page, head);
      const peers = await assertTransport(page, 'webrtc-direct');
      t.diagnostic(`connected peers: ${peers.length}`);
      const later = await assertAdvances(page, head.height, 30_000);
      t.diagnostic(`head advanced to ${later.height}`);
      await assertTransport(page, 'webrtc-direct');
      const shot = await screenshot(page, 'demo-webrtc.png');
      t.diagnostic(`screenshot ${shot}`);
    });
  });

  test('identity lookup box: registered, proven absent, bad input', { timeout: 180_000 }, async (t) => {
    // Honest peers only: this checks the page's rendering, not the rotation.
    await withDemo(t, '/?transport=websocket&forger=0', async (page) => {
      await waitFor(page, 'the light client to start', () => window.tiernetDemo.started, undefined, {
        timeoutMs: 60_000,
      });
      const zsi = net.devnet.nodes[0].zsi_id;
      assert.match(zsi, /^[0-9a-f]{64}$/, 'validator-0 has a zsi id in devnet.json');
      assert.equal(await page.inputValue('#lookup-input'), zsi, 'the box is prefilled with validator-0');

      const lookup = async (value, what, done) => {
        await page.fill('#lookup-input', value);
        // The page shows "Looking up …" (class muted) synchronously on submit,
        // so a stale result is never mistaken for this one.
        await page.click('#lookup-button');
        return waitFor(
          page,
          what,
          (re) => {
            const node = document.getElementById('lookup-result');
            if (node.classList.contains('muted')) return null; // still looking up
            const text = node.textContent || '';
            return new RegExp(re, 'i').test(text) ? { text, cls: node.className } : null;
          },
          done,
          { timeoutMs: 30_000 },
        );
      };

      const found = await lookup(zsi, 'validator-0 to be found with a tier and a proof', 'proven at height');
      t.diagnostic(`validator-0: ${found.text}`);
      assert.match(found.text, /TL[0-5]/, 'a tier is shown');
      assert.match(found.text, /proven at height \d+/);

      const absent = await lookup('0'.repeat(64), '64 zeros to be not registered', 'not registered');
      t.diagnostic(`zeros: ${absent.text}`);
      assert.match(absent.text, /proven absent/);

      const bad = await lookup('xyz', 'an error for "xyz"', 'error');
      t.diagnostic(`xyz: ${bad.text}`);
      assert.match(bad.cls, /\berror\b/, 'the result is styled as an error');

      // Clicking a validator in the list looks it up too.
      await page.click('#zsi-list button.zsi >> nth=1');
      const v1 = await waitFor(
        page,
        'validator-1 to be found from the list',
        (id) => {
          const node = document.getElementById('lookup-result');
          const text = node.textContent || '';
          return document.getElementById('lookup-input').value === id && /proven at height/.test(text) ? text : null;
        },
        net.devnet.nodes[1].zsi_id,
        { timeoutMs: 30_000 },
      );
      assert.match(v1, /TL[0-5]/);
    });
  });
  test('the package API: EventTarget, async iterator, AbortSignal, error classes, proven state', { timeout: 180_000 }, async (t) => {
    // The page loads the package's main module (index.js) itself, next to the demo's own client.
    await withDemo(t, '/?transport=websocket&forger=0', async (page) => {
      const r = await page.evaluate(async (zsi) => {
        const m = await import('/pkg/index.js');
        const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
        const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
        const client = await m.createLightClient({ networkId: devnet.network_id, bootstrap: devnet.websocket, genesis });
        const heard = [];
        const onHead = (e) => heard.push(e.detail.head.height);
        client.addEventListener('headVerified', onHead);
        const iterated = [];
        const reader = (async () => {
          for await (const ev of client.events()) {
            iterated.push(ev.type);
            if (iterated.filter((x) => x === 'headVerified').length >= 2) break;
          }
        })();
        const head = await client.start();
        await client.waitForHeight(head.height + 2);
        await reader;
        client.removeEventListener('headVerified', onHead);
        const heardWhenRemoved = heard.length;

        const controller = new AbortController();
        const far = client.waitForHeight(head.height + 1_000_000, { signal: controller.signal });
        setTimeout(() => controller.abort(), 100);
        const started = Date.now();
        let aborted = null;
        try {
          await far;
        } catch (e) {
          aborted = { name: e.name, ms: Date.now() - started };
        }
        let preAborted = null;
        try {
          await client.getState(new Uint8Array([1]), { signal: AbortSignal.abort() });
        } catch (e) {
          preAborted = e.name;
        }
        let bad = null;
        try {
          await client.lookupIdentity('zz');
        } catch (e) {
          bad = { badInput: e instanceof m.BadInputError, tiernet: e instanceof m.TiernetError, kind: e.kind };
        }
        // An oversized checkpoint is refused by its length, before it is decoded.
        let tooLong = null;
        try {
          await m.createLightClient({ networkId: devnet.network_id, bootstrap: devnet.websocket, genesis, persist: false, checkpoint: '00'.repeat(1024 * 1024 + 1) });
        } catch (e) {
          tooLong = { kind: e.kind, byLength: /hex digits/.test(e.message) };
        }
        const proven = await client.getState(m.identityStateKey(zsi));
        const identity = await client.lookupIdentity(zsi);
        const peers = client.peers();
        const checkpoint = client.exportCheckpoint();
        // Devnet snapshots come every 10 blocks.
        await client.waitForHeight(11);
        const chunks = [];
        const snapshot = await client.syncSnapshot({
          onChunk: (c) => chunks.push({ entries: c.entries.length, done: c.done, total: c.total, keyIsBytes: c.entries[0]?.key instanceof Uint8Array }),
        });

        const tail = client.events();
        await client.waitForHeight(client.head().height + 1);
        client.stop();
        let drained = 0;
        for (;;) {
          const next = await tail.next();
          if (next.done) break;
          drained += 1;
        }
        let afterStop = null;
        try {
          await client.syncToLatest();
        } catch (e) {
          afterStop = { kind: e.kind, notStarted: e instanceof m.NotStartedError };
        }
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return {
          head,
          iterated,
          heardWhenRemoved,
          heardLater: heard.length,
          aborted,
          preAborted,
          bad,
          tooLong,
          proven: { hasValue: proven.value instanceof Uint8Array, head: proven.head },
          identity: identity && { zsiId: identity.zsiId, tier: identity.tier, height: identity.height },
          connected: peers.filter((p) => p.state === 'connected').length,
          checkpoint: typeof checkpoint === 'string' && /^[0-9a-f]+$/.test(checkpoint),
          drained,
          afterStop,
          snapshot,
          chunks,
        };
      }, net.devnet.nodes[0].zsi_id);
      t.diagnostic(JSON.stringify(r));
      assert.ok(r.head.height >= 1, 'start resolved to a verified head');
      assert.ok(r.iterated.filter((x) => x === 'headVerified').length >= 2, `the async iterator saw heads: ${r.iterated}`);
      assert.ok(r.heardWhenRemoved >= 2, 'the EventTarget listener heard heads');
      assert.equal(r.heardLater, r.heardWhenRemoved, 'a removed listener hears nothing more');
      assert.equal(r.aborted?.name, 'AbortError', 'aborting rejects with the signal reason');
      assert.ok(r.aborted.ms < 5_000, `the abort took ${r.aborted.ms} ms`);
      assert.equal(r.preAborted, 'AbortError', 'an aborted signal rejects at once');
      assert.deepEqual(r.bad, { badInput: true, tiernet: true, kind: 'BadInput' });
      assert.deepEqual(r.tooLong, { kind: 'BadCheckpoint', byLength: true }, 'an oversized checkpoint is refused before decoding');
      assert.ok(r.proven.hasValue, 'validator-0 is registered: its record is proven present');
      assert.ok(r.proven.head.height >= r.head.height, 'the proven value comes with its head');
      assert.match(r.proven.head.stateRoot, /^[0-9a-f]{64}$/);
      assert.equal(r.identity.zsiId, net.devnet.nodes[0].zsi_id);
      assert.match(r.identity.tier, /^TL[0-5]$/);
      assert.ok(r.connected >= 1, 'peers() lists connected peers');
      assert.ok(r.checkpoint, 'exportCheckpoint gives hex');
      assert.ok(r.drained < 1_100, 'the iterator ended when the client stopped');
      assert.deepEqual(r.afterStop, { kind: 'NotStarted', notStarted: true });
      assert.ok(r.snapshot.chunks >= 1 && r.chunks.length === r.snapshot.chunks, `one onChunk per chunk: ${JSON.stringify(r.chunks)}`);
      assert.equal(r.chunks.reduce((n, c) => n + c.entries, 0), r.snapshot.entries, 'the streamed entries are the snapshot');
      assert.ok(r.chunks.every((c, i) => c.done === i + 1 && c.total === r.snapshot.chunks && c.keyIsBytes));
    });
  });

  test('a page reload warm-starts from the trust the page kept in IndexedDB', { timeout: 180_000 }, async (t) => {
    await withDemo(t, '/?transport=websocket&forger=0', async (page) => {
      const cold = await waitForHead(page, 1, { timeoutMs: 90_000 });
      const coldState = await page.evaluate(() => ({ resumedFrom: window.tiernetDemo.resumedFrom, firstHeadMs: window.tiernetDemo.firstHeadMs }));
      assert.equal(coldState.resumedFrom, null, 'a fresh profile starts cold (from the genesis)');
      const saved = await waitFor(page, 'trust saved to IndexedDB at the verified head', (h) => {
        const s = window.tiernetDemo.savedHeight;
        return s !== null && s >= h ? s : null;
      }, cold.height, { timeoutMs: 30_000 });
      await page.reload({ waitUntil: 'domcontentloaded' });
      const warmHead = await waitForHead(page, saved, { timeoutMs: 60_000 });
      const warm = await page.evaluate(() => ({ resumedFrom: window.tiernetDemo.resumedFrom, firstHeadMs: window.tiernetDemo.firstHeadMs }));
      t.diagnostic(`cold first head ${coldState.firstHeadMs.toFixed(0)} ms; after reload: resumed from height ${warm.resumedFrom}, first head ${warm.firstHeadMs.toFixed(0)} ms (height ${warmHead.height})`);
      assert.ok(warm.resumedFrom !== null && warm.resumedFrom >= saved, `the reload started from the saved trust (resumedFrom ${warm.resumedFrom}, saved ${saved})`);
      assert.ok(warmHead.height >= warm.resumedFrom);
      // persist=0: nothing is read back.
      await page.goto(new URL('/?transport=websocket&forger=0&persist=0', server.url).href, { waitUntil: 'domcontentloaded' });
      await waitForHead(page, 1, { timeoutMs: 60_000 });
      assert.equal(await page.evaluate(() => window.tiernetDemo.resumedFrom), null, 'persist=0 is a cold start');
    });
  });

  test("the page's only peer is killed and a node started at its address: verified heads resume within 5 s", { timeout: 240_000 }, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tiernet-follower-'));
    let follower = null;
    try {
      follower = await startFollower({ devnetDir: net.dir, devnet: net.devnet, dataDir });
      // A page of the server's origin that runs no client of its own.
      await withDemo(t, '/devnet.json', async (page) => {
        const first = await page.evaluate(async (ws) => {
          const m = await import('/pkg/index.js');
          const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
          const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
          const client = await m.createLightClient({ networkId: devnet.network_id, bootstrap: [ws], genesis, minPeers: 1, persist: false });
          window.heads = [];
          client.addEventListener('headVerified', (e) => window.heads.push({ height: e.detail.head.height, at: Date.now() }));
          window.client = client;
          const head = await client.start();
          return { head, peers: client.peers().filter((p) => p.state === 'connected').map((p) => p.peerId) };
        }, follower.ws);
        assert.deepEqual(first.peers, [follower.peerId], 'the follower is the page\'s only peer');
        // Let it follow a couple of gossiped heads first.
        await waitFor(page, 'a gossiped head', (h) => window.heads.some((x) => x.height > h), first.head.height, { timeoutMs: 30_000, failOnPageError: false });
        await follower.kill();
        const killedAt = Date.now();
        const heightAtKill = await page.evaluate(() => window.client.head().height);
        follower = await startFollower({ devnetDir: net.dir, devnet: net.devnet, dataDir, wsPort: follower.wsPort });
        const resumed = await waitFor(
          page,
          `a verified head above ${heightAtKill} after the kill`,
          ({ h, since }) => window.heads.find((x) => x.height > h && x.at > since) ?? null,
          { h: heightAtKill, since: killedAt },
          { timeoutMs: 30_000, failOnPageError: false },
        );
        const waited = resumed.at - killedAt;
        const peers = await page.evaluate(() => window.client.peers().filter((p) => p.state === 'connected').map((p) => p.peerId));
        t.diagnostic(`killed at height ${heightAtKill}; verified height ${resumed.height} ${waited} ms later; connected: ${peers.join(', ')}`);
        assert.ok(waited <= 5_000, `verified heads resumed ${waited} ms after the kill`);
        assert.ok(peers.length >= 1, 'connected again');
        await page.evaluate(() => window.client.stop());
      });
    } finally {
      await follower?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('in a Web Worker: the same API, the wasm off the main thread', { timeout: 180_000 }, async (t) => {
    await withDemo(t, '/devnet.json', async (page) => {
      const r = await page.evaluate(async (zsi) => {
        const m = await import('/pkg/index.js');
        const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
        const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
        const client = await m.createLightClient({
          worker: true,
          networkId: devnet.network_id,
          bootstrap: [...devnet.websocket, ...devnet.webrtc_direct],
          genesis,
          persist: false,
        });
        const heads = [];
        client.addEventListener('headVerified', (e) => heads.push(e.detail.head.height));
        const iterated = [];
        const reader = (async () => {
          for await (const ev of client.events()) {
            iterated.push(ev.type);
            if (iterated.filter((x) => x === 'headVerified').length >= 2) break;
          }
        })();
        const head = await client.start();
        const later = await client.waitForHeight(head.height + 2);
        await reader;
        // The record's key (`id/` + the 32-byte id) built here: m.identityStateKey would load the wasm on the page.
        const key = new Uint8Array([...new TextEncoder().encode('id/'), ...zsi.match(/../g).map((b) => parseInt(b, 16))]);
        const proven = await client.getState(key);
        const identity = await client.lookupIdentity(zsi);
        let bad = null;
        try {
          await client.lookupIdentity('zz');
        } catch (e) {
          bad = { badInput: e instanceof m.BadInputError, kind: e.kind };
        }
        const controller = new AbortController();
        const far = client.waitForHeight(later.height + 1_000_000, { signal: controller.signal });
        setTimeout(() => controller.abort(), 100);
        let aborted = null;
        try {
          await far;
        } catch (e) {
          aborted = e.name;
        }
        const peers = client.peers().filter((p) => p.state === 'connected');
        const sync = { head: client.head(), status: client.status(), checkpoint: /^[0-9a-f]+$/.test(client.exportCheckpoint()) };
        client.stop();
        let afterStop = null;
        try {
          await client.waitForHeight(1);
        } catch (e) {
          afterStop = e.kind;
        }
        const wasmOnPage = performance.getEntriesByType('resource').some((e) => e.name.endsWith('.wasm'));
        return {
          isWorker: client instanceof m.WorkerLightClient,
          head,
          later,
          heads,
          iterated,
          proven: { hasValue: proven.value instanceof Uint8Array, height: proven.head.height },
          identity: identity && identity.zsiId,
          bad,
          aborted,
          transports: [...new Set(peers.flatMap((p) => p.transports))],
          sync,
          afterStop,
          wasmOnPage,
        };
      }, net.devnet.nodes[0].zsi_id);
      t.diagnostic(JSON.stringify(r));
      assert.ok(r.isWorker, 'createLightClient({ worker: true }) gives a WorkerLightClient');
      assert.equal(r.wasmOnPage, false, 'the page itself never fetched the .wasm: it runs in the worker');
      assert.ok(r.head.height >= 1 && r.later.height >= r.head.height + 2, 'verified heads, advancing');
      assert.ok(r.heads.length >= 2, 'headVerified events reach the page');
      assert.ok(r.iterated.filter((x) => x === 'headVerified').length >= 2, 'and its async iterator');
      assert.ok(r.proven.hasValue && r.proven.height >= r.head.height, 'state proven in the worker');
      assert.equal(r.identity, net.devnet.nodes[0].zsi_id);
      assert.deepEqual(r.bad, { badInput: true, kind: 'BadInput' }, 'errors keep their class across the worker');
      assert.equal(r.aborted, 'AbortError');
      assert.ok(r.transports.includes('websocket'), 'WebSocket from the worker');
      assert.ok(r.sync.head.height >= r.later.height && r.sync.checkpoint, 'the synchronous getters answer');
      assert.equal(r.afterStop, 'NotStarted', 'calls after stop() fail');
    });
  });

  test('the WebRTC bridge alone: certificates, offer and descriptions, channel and connection close, limits', { timeout: 60_000 }, async (t) => {
    await withDemo(t, '/devnet.json', async (page) => {
      const r = await page.evaluate(async () => {
        const { installWorkerRtc, servePageRtc } = await import('/pkg/rtc-bridge.js');
        const { port1, port2 } = new MessageChannel();
        const served = servePageRtc(port1, { maxPeerConnections: 2 });
        const bridged = {}; // stands for the worker's global
        installWorkerRtc(port2, bridged);
        const within = (promise, what, ms = 10_000) =>
          Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
        const certificate = await within(
          bridged.RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' }),
          'generateCertificate',
        );
        const a = new bridged.RTCPeerConnection({ certificates: [certificate] });
        const handshake = a.createDataChannel('', { negotiated: true, id: 0 });
        const plain = a.createDataChannel('plain');
        plain.binaryType = 'arraybuffer';
        // What libp2p does before dialling: an offer, set as the local description.
        const offer = await within(a.createOffer(), 'createOffer');
        await within(a.setLocalDescription(offer), 'setLocalDescription');
        const sdp = a.localDescription.sdp;
        const held = served.counts();
        let sendBeforeOpen = null;
        try {
          handshake.send(new Uint8Array([1]));
        } catch (e) {
          sendBeforeOpen = e.name;
        }
        // A channel closed by us: closing at once, closed when the page says so.
        const closed = new Promise((resolve) => plain.addEventListener('close', resolve, { once: true }));
        plain.close();
        const closingAtOnce = plain.readyState;
        await within(closed, 'the close event');
        // Two connections at most: the third fails on the page and its calls fail.
        const c = new bridged.RTCPeerConnection();
        const d = new bridged.RTCPeerConnection();
        let overLimit = null;
        try {
          await within(d.createOffer(), 'createOffer over the limit');
        } catch (e) {
          overLimit = e.name;
        }
        // Closing a connection closes its channels at once, without events (as the real API).
        let quietClose = false;
        handshake.addEventListener('close', () => (quietClose = false));
        a.close();
        quietClose = handshake.readyState === 'closed';
        // Certificates nobody used are bounded.
        for (let i = 0; i < 20; i++) await within(bridged.RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' }), 'certificates');
        const certificates = served.counts().certificates;
        c.close();
        d.close();
        await new Promise((resolve) => setTimeout(resolve, 200));
        const afterClose = served.counts();
        served.close();
        return {
          fingerprint: /a=fingerprint:sha-256 /.test(sdp),
          application: /m=application .* webrtc-datachannel/.test(sdp),
          held,
          sendBeforeOpen,
          closingAtOnce,
          overLimit,
          quietClose,
          certificates,
          afterClose,
        };
      });
      t.diagnostic(JSON.stringify(r));
      assert.ok(r.fingerprint && r.application, 'the offer made on the page comes back with its fingerprint and data section');
      assert.deepEqual(r.held, { connections: 1, channels: 2, certificates: 0 }, 'the page holds the connection and both channels; the certificate went into it');
      assert.equal(r.sendBeforeOpen, 'InvalidStateError', 'a channel not yet open refuses to send, as the real one');
      assert.equal(r.closingAtOnce, 'closing', 'close() is closing at once');
      assert.equal(r.overLimit, 'OperationError', 'a connection over the limit is refused');
      assert.ok(r.quietClose, "closing the connection closed its channels without 'close' events");
      assert.equal(r.certificates, 16, 'unused certificates are bounded (the oldest go)');
      assert.deepEqual(r.afterClose, { connections: 0, channels: 0, certificates: 16 }, 'closed connections leave nothing on the page');
    });
  });

  test('WebRTC-direct under a spoofed flood: Chromium answers the node\'s return-routability check', { timeout: 120_000 }, async (t) => {
    // A node of its own, so that no other test's attempt is in flight at it.
    const follower = await startFollower({ devnetDir: net.dir, devnet: net.devnet });
    const port = Number(follower.webrtc.split('/udp/')[1].split('/')[0]);
    const deaf = [];
    try {
      // The follower has the chain before the flood starts.
      await withDemo(t, '/devnet.json', async (page) => {
        await page.evaluate(async (ws) => {
          const m = await import('/pkg/index.js');
          const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
          const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
          const client = await m.createLightClient({ networkId: devnet.network_id, bootstrap: [ws], genesis, persist: false, minPeers: 1 });
          await client.start({ signal: AbortSignal.timeout(30_000) });
          client.stop();
        }, follower.ws);
      });
      // Eight sources that never answer take the node's unproven attempts
      // (each lives up to the handshake timeout, 10 s); two more are held
      // back; the browser must answer the node's check to get in.
      for (let i = 0; i < 8; i++) deaf.push(await deafSource(port));
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (let i = 0; i < 2; i++) deaf.push(await deafSource(port));
      await withDemo(t, '/devnet.json', async (page) => {
        const r = await page.evaluate(async (bootstrap) => {
          const m = await import('/pkg/index.js');
          const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
          const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
          const client = await m.createLightClient({ networkId: devnet.network_id, bootstrap: [bootstrap], genesis, persist: false, minPeers: 1 });
          const started = performance.now();
          const head = await client.start({ signal: AbortSignal.timeout(8_000) });
          const ms = Math.round(performance.now() - started);
          const transports = client.peers().filter((p) => p.state === 'connected').flatMap((p) => p.transports);
          client.stop();
          return { height: head.height, ms, transports };
        }, follower.webrtc);
        // Still under the flood after the browser got in: two more silent sources are held back.
        for (let i = 0; i < 2; i++) deaf.push(await deafSource(port));
        await new Promise((resolve) => setTimeout(resolve, 300));
        const admitted = deaf.filter((d) => d.answered()).length;
        t.diagnostic(JSON.stringify({ ...r, deafAdmitted: admitted }));
        assert.equal(admitted, 8, `${admitted} of 12 silent sources started attempts: 8 expected`);
        assert.ok(!deaf.slice(8).some((d) => d.answered()), 'the silent sources beyond 8 were held back, before and after');
        assert.ok(r.height >= 1 && r.transports.includes('webrtc-direct'), 'the browser got in over WebRTC-direct meanwhile');
      });
    } finally {
      for (const d of deaf) d.close();
      await follower.stop();
    }
  });

  test('in a Web Worker over WebRTC-direct only: the page carries out the WebRTC calls', { timeout: 180_000 }, async (t) => {
    await withDemo(t, '/devnet.json', async (page) => {
      const r = await page.evaluate(async (zsi) => {
        const m = await import('/pkg/index.js');
        const devnet = await (await fetch('/devnet.json', { cache: 'no-store' })).json();
        const genesis = typeof devnet.genesis === 'string' ? devnet.genesis : JSON.stringify(devnet.genesis);
        const workerHasRtc = await new Promise((resolve) => {
          const probe = new Worker(URL.createObjectURL(new Blob(['postMessage(typeof RTCPeerConnection)'], { type: 'text/javascript' })));
          probe.onmessage = ({ data }) => {
            probe.terminate();
            resolve(data !== 'undefined');
          };
        });
        const client = await m.createLightClient({
          worker: true,
          networkId: devnet.network_id,
          bootstrap: devnet.webrtc_direct,
          genesis,
          persist: false,
        });
        const head = await client.start();
        const later = await client.waitForHeight(head.height + 2);
        const identity = await client.lookupIdentity(zsi);
        const peers = client.peers().filter((p) => p.state === 'connected');
        const held = client.rtcBridgeCounts();
        client.stop();
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return {
          workerHasRtc,
          head,
          later,
          identity: identity && identity.zsiId,
          transports: [...new Set(peers.flatMap((p) => p.transports))],
          held,
          afterStop: client.rtcBridgeCounts(),
        };
      }, net.devnet.nodes[0].zsi_id);
      t.diagnostic(JSON.stringify(r));
      assert.equal(r.workerHasRtc, false, "Chromium's workers have no RTCPeerConnection (else this test proves nothing)");
      assert.ok(r.head.height >= 1 && r.later.height >= r.head.height + 2, 'verified heads over bridged WebRTC');
      assert.equal(r.identity, net.devnet.nodes[0].zsi_id, 'a proven lookup over bridged WebRTC');
      assert.ok(r.transports.includes('webrtc-direct'), 'connected over WebRTC-direct');
      assert.ok(r.held.connections >= 1 && r.held.channels >= 1, 'the page holds the connections and their channels');
      assert.deepEqual(r.afterStop, { connections: 0, channels: 0, certificates: 0 }, 'stop() leaves nothing open on the page');
    });
  });
});
