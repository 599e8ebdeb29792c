#!/usr/bin/env node
// A dependency-free static server for the tiernet web demo.
//
//   node web-demo/serve.mjs --devnet-dir DIR [--port N] [--host 127.0.0.1] [--pkg-dir DIR]
//
// Serves web-demo/* at /, bindings-wasm/pkg/* (or --pkg-dir) at /pkg/ and
// DIR/devnet.json at /devnet.json (read on every request; 503 until the
// devnet has written it); DIR/genesis.json at /genesis.json likewise.
// Prints one line `web-demo: http://HOST:PORT/` once listening.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

function usage(message) {
  if (message) process.stderr.write(`serve.mjs: ${message}\n`);
  process.stderr.write('usage: node web-demo/serve.mjs --devnet-dir DIR [--port N (0 = free)] [--host 127.0.0.1] [--pkg-dir DIR]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { devnetDir: null, port: 8080, host: '127.0.0.1', pkgDir: join(ROOT, 'bindings-wasm', 'pkg') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--devnet-dir': opts.devnetDir = value(); break;
      case '--port': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) usage(`bad --port ${v}`);
        opts.port = n;
        break;
      }
      case '--host': opts.host = value(); break;
      case '--pkg-dir': opts.pkgDir = value(); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!opts.devnetDir) usage('--devnet-dir is required');
  opts.devnetDir = resolve(opts.devnetDir);
  opts.pkgDir = resolve(opts.pkgDir);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

function send(res, status, body, type = 'text/plain; charset=utf-8', head = false) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(String(body));
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': buf.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : buf);
}

// Maps a URL path under `prefix` to a file under `base`, or null if it would
// leave `base` or names something odd.
function mapPath(base, rest) {
  let decoded;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '..' || p === '.' || p.startsWith('.'))) return null;
  const file = resolve(base, ...parts);
  if (file !== base && !file.startsWith(base + sep)) return null;
  return file;
}

async function serveFile(res, file, head) {
  let info;
  try {
    info = await stat(file);
  } catch {
    return send(res, 404, 'not found\n', undefined, head);
  }
  if (info.isDirectory()) file = join(file, 'index.html');
  let body;
  try {
    body = await readFile(file);
  } catch {
    return send(res, 404, 'not found\n', undefined, head);
  }
  send(res, 200, body, TYPES[extname(file).toLowerCase()] || 'application/octet-stream', head);
}

async function handle(req, res) {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'method not allowed\n');
  }
  const raw = req.url || '/';
  const path = raw.split('?')[0].split('#')[0];
  // Reject traversal outright, encoded or not.
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return send(res, 400, 'bad request\n', undefined, head);
  }
  if (decoded.split(/[\\/]/).includes('..')) return send(res, 400, 'bad request: ".." is not allowed\n', undefined, head);

  if (path === '/devnet.json' || path === '/genesis.json') {
    const file = join(opts.devnetDir, path.slice(1));
    let body;
    try {
      body = await readFile(file);
    } catch {
      return send(
        res,
        503,
        `${path.slice(1)} is not written yet: ${file} does not exist. Start the devnet (make demo) and reload.\n`,
        undefined,
        head,
      );
    }
    return send(res, 200, body, TYPES['.json'], head);
  }
  if (path === '/pkg' || path.startsWith('/pkg/')) {
    const file = mapPath(opts.pkgDir, path.slice('/pkg'.length));
    if (!file) return send(res, 404, 'not found\n', undefined, head);
    return serveFile(res, file, head);
  }
  const file = mapPath(HERE, path);
  if (!file) return send(res, 404, 'not found\n', undefined, head);
  return serveFile(res, file, head);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`web-demo: ${req.url}: ${err && err.stack ? err.stack : err}\n`);
    if (!res.headersSent) send(res, 500, 'internal error\n');
    else res.destroy();
  });
});

server.on('error', (err) => {
  process.stderr.write(`web-demo: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
  process.exit(1);
});

server.listen(opts.port, opts.host, () => {
  const { port } = server.address();
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  process.stdout.write(`web-demo: http://${host}:${port}/\n`);
});

// A static server has nothing to flush: stop listening, drop open
// connections and exit.
function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
