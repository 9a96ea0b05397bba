// End-to-end test of the built-in chat page: the real `chat-room` binary on a
// fresh SQLite file, driven through Debian's Chromium by playwright-core. Two
// users chat in one room (messages, presence, typing, edits, deletions, search),
// a hostile message stays text, history pages load on scroll, a reload shows the
// history, and the page reconnects by itself after a server restart. The inbox:
// one socket per page, unread badges that count live, "seen" ticks when the other
// user reads, rooms that appear and go without a reload. Offers: a card per
// offer, accepted and withdrawn live, with a countdown. Moderators
// and admins get their delete buttons; with CORS_ORIGINS set the page at the
// service's own address still goes live, and a refused socket is explained. The
// API docs pages load nothing from another host. Screenshots of every screen at
// 1280×800 and 390×844.
//
//   cargo build -p chat-api && (cd tests/e2e && npm ci && npm test)
//
// CHAT_BIN (default target/debug/chat-room), CHROMIUM (default /usr/bin/chromium)
// and E2E_SCREENSHOTS (default tests/e2e/screenshots) override the paths;
// E2E_ASSETS=crates/api/src/web/assets serves the page's files from that folder
// instead of the binary (same headers), so editing them needs no rebuild.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BIN = process.env.CHAT_BIN || path.join(ROOT, 'target/debug/chat-room');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || path.join(HERE, 'screenshots');
const ASSETS = process.env.E2E_ASSETS ? path.resolve(ROOT, process.env.E2E_ASSETS) : null;
const WAIT_MS = 15000;
const XSS = '<img src=x onerror=alert(1)>';

// ---- helpers ---------------------------------------------------------------

/** Polls `check` until it returns something truthy, or fails naming `what`. */
async function until(what, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

let stepNumber = 0;
async function step(name, body) {
  stepNumber += 1;
  const started = Date.now();
  console.log(`${String(stepNumber).padStart(2)}. ${name}`);
  await body();
  console.log(`    ok (${Date.now() - started} ms)`);
}

// ---- the service -----------------------------------------------------------

class Service {
  constructor(port, dir, settings = {}) {
    this.port = port;
    this.dir = dir;
    this.settings = settings;
    this.base = `http://127.0.0.1:${port}`;
    this.log = fs.createWriteStream(path.join(dir, 'server.log'), { flags: 'a' });
    this.child = null;
  }

  async start() {
    // A clean environment: nothing from the caller's shell (REDIS_URL, .env in the
    // repository…) changes what is under test.
    const env = {
      PATH: process.env.PATH,
      HOME: this.dir,
      APP_ENV: 'development',
      AUTH_MODE: 'disabled',
      HOST: '127.0.0.1',
      PORT: String(this.port),
      DATABASE_URL: `sqlite://${path.join(this.dir, 'e2e.db')}?mode=rwc`,
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'pretty',
      ...this.settings,
    };
    const child = spawn(BIN, [], { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child = child;
    let exit = null;
    this.exited.then((e) => { exit = e; });
    await until('the service to answer /health', async () => {
      if (exit) throw new Error(`chat-room exited early (${JSON.stringify(exit)}); see ${this.dir}/server.log`);
      const response = await fetch(`${this.base}/health`).catch(() => null);
      return response && response.ok;
    }, 30000);
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(killer);
  }

  /** A token from the binary's own `chat-room token` command. */
  mintToken(sub, roles = []) {
    const env = { PATH: process.env.PATH, HOME: this.dir, JWT_SECRET: this.settings.JWT_SECRET };
    const args = ['token', '--sub', sub, '--ttl', '1h', ...roles.flatMap((role) => ['--role', role])];
    const run = spawnSync(BIN, args, { cwd: this.dir, env, encoding: 'utf8' });
    assert.equal(run.status, 0, `chat-room token failed: ${run.stderr}`);
    return run.stdout.trim();
  }

  /** A REST call as `user`, for setting the scene without the page. */
  async call(method, urlPath, user, body) {
    const headers = { 'x-user-id': user };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.base}${urlPath}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${urlPath}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

/**
 * A reverse proxy that sends the service a `Host` other than the one the browser
 * used, as a proxy configured with its upstream's name does: the browser's
 * `Origin` then names neither the service nor anything in CORS_ORIGINS.
 */
async function hostRewritingProxy(targetPort) {
  const host = `chat-room.internal:${targetPort}`;
  const forward = (req) => http.request({
    host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: { ...req.headers, host },
  });
  const server = http.createServer((req, res) => {
    const upstream = forward(req);
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('upgrade', (req, socket) => {
    const upstream = forward(req);
    // A browser may reset its side at any moment (the page closes a refused
    // socket): an unhandled 'error' would take the whole test run down.
    socket.on('error', () => upstream.destroy());
    const relay = (status, message, rawHeaders) => {
      const lines = [`HTTP/1.1 ${status} ${message}`];
      for (let i = 0; i < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    };
    upstream.on('upgrade', (answer, upstreamSocket) => {
      upstreamSocket.on('error', () => socket.destroy());
      relay(101, 'Switching Protocols', answer.rawHeaders);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    upstream.on('response', (answer) => {
      relay(answer.statusCode, answer.statusMessage, answer.rawHeaders);
      answer.pipe(socket);
    });
    upstream.on('error', () => socket.destroy());
    upstream.end();
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

// ---- the page --------------------------------------------------------------

/** A browser context; with E2E_ASSETS, the page's files come from that folder. */
async function newContext(browser, options) {
  const context = await browser.newContext(options);
  if (ASSETS) {
    await context.route(/^[^?#]*\/(ui\/[\w.-]+)?([?#].*)?$/, async (route) => {
      const { pathname } = new URL(route.request().url());
      const file = path.join(ASSETS, pathname === '/' ? 'index.html' : pathname.slice('/ui/'.length));
      const response = await route.fetch();
      if (!fs.existsSync(file) || !response.ok()) return route.fulfill({ response });
      const headers = { ...response.headers() };
      delete headers.etag; // the binary's ETag names other bytes
      return route.fulfill({ response, headers, body: fs.readFileSync(file) });
    });
  }
  return context;
}

/** A page with everything that must not happen recorded: dialogs, script errors, CSP violations. */
async function openPage(context, label, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('dialog', async (dialog) => {
    problems.push(`${label}: a ${dialog.type()} dialog opened: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) problems.push(`${label}: ${message.text()}`);
  });
  return page;
}

async function signIn(page, base, name, role = '') {
  await page.goto(`${base}/`);
  await page.locator('#login-user').waitFor();
  await page.locator('#login-user').fill(name);
  await page.locator('#login-role').selectOption(role);
  await page.locator('#login-user').press('Enter');
  await page.locator('#app').waitFor();
  await until(`${name} to be shown as signed in`, async () => (await page.locator('#whoami').textContent()) === name);
}

const messageText = (page, text) => page.locator('#message-list .msg-text').getByText(text, { exact: true });
const online = (page) => page.locator('#conn[data-state="online"]').waitFor();

async function send(page, text) {
  const input = page.locator('#composer-input');
  await input.fill(text);
  await input.press('Enter');
  await messageText(page, text).waitFor();
}

/** The page box of the first element matching `selector` inside `scope`. */
const box = (scope, selector) => scope.locator(selector).first().boundingBox();

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** The room header's height with the "Delete room" button shown and hidden. */
async function headHeights(page) {
  return page.evaluate(() => {
    const head = document.querySelector('#room .room-head');
    const button = document.getElementById('delete-room');
    const was = button.hidden;
    button.hidden = false;
    const shown = head.getBoundingClientRect().height;
    button.hidden = true;
    const hidden = head.getBoundingClientRect().height;
    button.hidden = was;
    return { shown, hidden };
  });
}

/** A hovered message's actions sit beside it: over neither neighbour, inside the list. */
async function assertActionsClear(message) {
  const geometry = await message.evaluate((li) => {
    const rect = (node) => (node ? node.getBoundingClientRect().toJSON() : null);
    return {
      actions: rect(li.querySelector('.msg-actions')),
      previous: rect(li.previousElementSibling),
      next: rect(li.nextElementSibling),
      list: rect(document.getElementById('messages')),
    };
  });
  const { actions, previous, next, list } = geometry;
  assert.ok(actions && actions.width > 0, 'the actions are shown');
  for (const [name, neighbour] of [['previous', previous], ['next', next]]) {
    if (neighbour) assert.ok(!overlaps(actions, neighbour), `the actions cover the ${name} message: ${JSON.stringify(geometry)}`);
  }
  assert.ok(actions.x >= list.x && actions.x + actions.width <= list.x + list.width, `inside the list: ${JSON.stringify(geometry)}`);
}

/** Saves a screenshot named after the current step: `NN-name.png`. */
async function shot(page, name) {
  const file = path.join(SHOTS, `${String(stepNumber).padStart(2, '0')}-${name}`);
  await page.screenshot({ path: file });
  console.log(`    screenshot: ${path.relative(ROOT, file)}`);
}

// ---- the scenario ----------------------------------------------------------

async function main() {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: run \`cargo build -p chat-api\` first`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium chromium-driver`);
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const old of fs.readdirSync(SHOTS).filter((f) => f.endsWith('.png'))) fs.rmSync(path.join(SHOTS, old));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-e2e-'));
  const service = new Service(await freePort(), dir);
  const problems = [];
  let browser = null;
  let passed = false;
  try {
    await step('start chat-room on a fresh SQLite file', () => service.start());
    const { base } = service;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
        '--no-first-run', '--disable-component-update', '--disable-sync',
        // A page fulfilled by the test (E2E_ASSETS) has no address of its own, so
        // Chromium would count its sockets to 127.0.0.1 as local network access.
        ...(ASSETS ? ['--disable-features=LocalNetworkAccessChecks'] : [])],
    });
    const desktop = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const phone = await newContext(browser, {
      viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1,
    });
    const alice = await openPage(desktop, 'alice', problems);
    // Alice's sockets pass through the test, which can cut them and refuse new ones
    // to play a network drop while the server stays up.
    // The test also sees every frame the page sends (`subscribe` with its `since`).
    const link = { current: null, refuse: false, urls: [], sent: [] };
    await alice.routeWebSocket(/\/ws\?/, (socket) => {
      link.urls.push(socket.url());
      if (link.refuse) {
        socket.close({ code: 1011, reason: 'network down (test)' });
        return;
      }
      const server = socket.connectToServer();
      socket.onMessage((message) => {
        link.sent.push(message);
        server.send(message);
      });
      link.current = socket;
    });
    const bob = await openPage(phone, 'bob', problems);

    await step('the page is served with its security headers', async () => {
      const response = await alice.goto(`${base}/`);
      const headers = response.headers();
      assert.match(headers['content-type'], /^text\/html/);
      assert.match(headers['content-security-policy'], /script-src 'self'/);
      await alice.locator('#login-user').waitFor();
      await until('the development-mode hint', async () => /Development mode/.test(await alice.locator('#login-mode').textContent()));
      assert.ok(await alice.locator('#conn').isHidden(), 'no connection badge before anyone signs in');
      await alice.locator('#login-role').waitFor();
      await shot(alice, 'login-desktop.png');
      await bob.goto(`${base}/`);
      await bob.locator('#login-role').waitFor();
      await shot(bob, 'login-phone.png');
    });

    await step('alice signs in and creates a room', async () => {
      await signIn(alice, base, 'alice');
      // Signed in, no room open: no socket, so no "not connected" badge either.
      // Signed in, no room open: the inbox socket is live and the top bar says nothing.
      await alice.locator('#conn').waitFor({ state: 'hidden' });
      await shot(alice, 'alice-desktop-signed-in.png');
      await alice.locator('#new-room-name').fill('Wheat exchange');
      await alice.locator('#new-room-form button[type=submit]').click();
      await until('the new room to open', async () => (await alice.locator('#room-name').textContent()) === 'Wheat exchange');
      await online(alice);
      assert.match(alice.url(), /#\/rooms\/\d+$/);
      assert.ok(await alice.locator('#delete-room').isVisible(), 'the creator may delete the room');
      const heights = await headHeights(alice);
      assert.equal(heights.shown, heights.hidden, 'the Delete room button does not make the header taller');
    });
    const roomId = Number(/#\/rooms\/(\d+)$/.exec(alice.url())[1]);

    await step('bob signs in on a phone and opens the room from the list', async () => {
      await signIn(bob, base, 'bob');
      await bob.locator('#rooms-pane').waitFor();
      await bob.locator('#conn').waitFor({ state: 'hidden' });
      await shot(bob, 'bob-phone-signed-in.png');
      await bob.locator('.room-list a', { hasText: 'Wheat exchange' }).click();
      await online(bob);
      assert.ok(await bob.locator('#rooms-pane').isHidden(), 'on a phone the room replaces the list');
      assert.ok(await bob.locator('#delete-room').isHidden(), 'bob did not create it');
      const heights = await headHeights(bob);
      assert.equal(heights.shown, heights.hidden, 'the same header height for creators and others');
    });

    await step('each sees the other online', async () => {
      await alice.locator('#people-list li[data-user="bob"]').waitFor();
      await bob.locator('#people-list li[data-user="alice"]').waitFor({ state: 'attached' });
      await until('bob to count two people', async () => (await bob.locator('#people-count').textContent()) === '2');
    });

    await step('alice sees bob typing', async () => {
      await bob.locator('#composer-input').pressSequentially('Hello from B');
      await until('the typing line', async () => (await alice.locator('#typing').textContent()) === 'bob is typing…');
      await shot(alice, 'alice-desktop-typing.png');
    });

    await step('bob sends with Enter and alice gets it live', async () => {
      await bob.locator('#composer-input').pressSequentially('ob');
      await bob.locator('#composer-input').press('Enter');
      await messageText(bob, 'Hello from Bob').waitFor();
      await messageText(alice, 'Hello from Bob').waitFor();
      await until('the typing line to clear', async () => (await alice.locator('#typing').textContent()) === '');
      assert.equal(await bob.locator('#composer-input').inputValue(), '', 'the composer is cleared');
      // Posting in a public room makes it one of bob's: it moves to his inbox.
      await bob.locator('#room-list a', { hasText: 'Wheat exchange' }).waitFor({ state: 'attached' });
    });

    await step('alice answers and bob gets it live', async () => {
      await send(alice, 'Selling 20 t of wheat at 210 UAH/kg');
      await messageText(bob, 'Selling 20 t of wheat at 210 UAH/kg').waitFor();
    });

    await step('a message with HTML in it is shown as text and runs nothing', async () => {
      await send(alice, XSS);
      await messageText(bob, XSS).waitFor();
      for (const [who, page] of [['alice', alice], ['bob', bob]]) {
        const texts = await page.locator('#message-list .msg-text').allTextContents();
        assert.ok(texts.includes(XSS), `${who} shows the markup literally`);
        assert.equal(await page.locator('img').count(), 0, `${who}'s page has no <img> element`);
      }
      assert.deepEqual(problems, [], 'no dialog, script error or CSP violation');
      await shot(alice, 'alice-desktop-chat.png');
      await shot(bob, 'bob-phone-chat.png');
    });

    await step('bob opens the list of who is online', async () => {
      await bob.locator('#people-toggle').click();
      await bob.locator('#people-list li[data-user="alice"]').waitFor();
      await shot(bob, 'bob-phone-people.png');
      await bob.locator('#people-toggle').click();
      await bob.locator('#people-pane').waitFor({ state: 'hidden' });
    });

    await step('alice edits her message and bob sees the edit', async () => {
      const mine = alice.locator('#message-list li.msg', { hasText: 'Selling 20 t of wheat' });
      await mine.hover();
      await mine.locator('.msg-edit-button').waitFor();
      await assertActionsClear(mine);
      await shot(alice, 'alice-desktop-message-actions.png');
      await mine.locator('.msg-edit-button').click();
      await mine.locator('.msg-edit textarea').fill('Selling 25 t of wheat at 205 UAH/kg');
      await shot(alice, 'alice-desktop-editing.png');
      await mine.locator('.msg-edit textarea').press('Enter');
      const theirs = bob.locator('#message-list li.msg', { hasText: 'Selling 25 t of wheat at 205 UAH/kg' });
      await theirs.locator('.msg-edited').waitFor();
      assert.equal(await bob.locator('#message-list li.msg', { hasText: 'Selling 20 t' }).count(), 0);
    });

    await step('bob deletes his own message and alice sees it go', async () => {
      await send(bob, 'oops, wrong room');
      await messageText(alice, 'oops, wrong room').waitFor();
      const mine = bob.locator('#message-list li.msg', { hasText: 'oops, wrong room' });
      await mine.locator('.msg-delete-button').click();
      await mine.locator('.msg-delete-button.confirming').click();
      await messageText(alice, 'oops, wrong room').waitFor({ state: 'detached' });
      await messageText(bob, 'oops, wrong room').waitFor({ state: 'detached' });
      assert.equal(await alice.locator('#message-list li.msg .msg-edit-button').count() > 0, true, 'alice may edit her own');
      assert.equal(await alice.locator('#message-list li.msg:not(.own) .msg-edit-button').count(), 0, 'but not bob\'s');
    });

    await step('a search with no letters or digits finds nothing and says so', async () => {
      for (const [page, who, size] of [[bob, 'bob', 'phone'], [alice, 'alice', 'desktop']]) {
        await page.locator('#search-input').fill('?!');
        await page.locator('#search-input').press('Enter');
        // The service finds nothing for punctuation only (200, not a refusal).
        await until(`${who}'s summary`, async () => (await page.locator('#search-summary').textContent()) === 'No messages match “?!”.');
        await shot(page, `${who}-${size}-search-nothing.png`);
        await page.locator('#search-close').click();
        await page.locator('#search-input').fill('');
      }
    });

    await step('bob searches the room', async () => {
      await bob.locator('#search-input').fill('WHEAT');
      await bob.locator('#search-input').press('Enter');
      const hit = bob.locator('#search-list li').first();
      await hit.waitFor();
      assert.equal(await hit.locator('mark').first().textContent(), 'wheat');
      assert.match(await bob.locator('#search-summary').textContent(), /1 result for “WHEAT”/);
      await shot(bob, 'bob-phone-search.png');
      await hit.locator('button').click();
      await bob.locator('#message-list li.msg.flash', { hasText: 'Selling 25 t' }).waitFor();
      await bob.locator('#search-close').click();
      await bob.locator('#search-results').waitFor({ state: 'hidden' });
    });

    await step('older history loads page by page when scrolling up', async () => {
      const room = await service.call('POST', '/rooms', 'carol', { name: 'Price history' });
      for (let i = 1; i <= 120; i += 1) {
        await service.call('POST', `/rooms/${room.id}/messages`, 'carol', { content: `price update ${i}` });
      }
      await alice.locator('#rooms-refresh').click();
      await alice.locator('.room-list a', { hasText: 'Price history' }).click();
      await online(alice);
      const count = () => alice.locator('#message-list li.msg').count();
      await until('the newest page', async () => (await count()) === 50);
      assert.equal(await alice.locator('#message-list .msg-text').first().textContent(), 'price update 71');
      for (const expected of [100, 120]) {
        await alice.locator('#messages').evaluate((box) => { box.scrollTop = 0; });
        await until(`${expected} messages after scrolling up`, async () => (await count()) === expected);
      }
      await until('the start of the conversation', async () => /beginning/.test(await alice.locator('#history-status').textContent()));
      const texts = await alice.locator('#message-list .msg-text').allTextContents();
      assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => `price update ${i + 1}`), 'every message once, in order');
      await shot(alice, 'alice-history-paging.png');
      await alice.locator('.room-list a', { hasText: 'Wheat exchange' }).click();
      await online(alice);
      await messageText(alice, XSS).waitFor();
    });

    await step('a reload shows the history and the presence again', async () => {
      await bob.reload();
      await online(bob);
      for (const text of ['Hello from Bob', 'Selling 25 t of wheat at 205 UAH/kg', XSS]) {
        await messageText(bob, text).waitFor();
      }
      assert.equal(await bob.locator('img').count(), 0);
      await alice.locator('#people-list li[data-user="bob"]').waitFor();
      await shot(bob, 'bob-phone-after-reload.png');
    });

    await step('a room created elsewhere shows up in the lists by itself', async () => {
      await service.call('POST', '/rooms', 'carol', { name: 'Barley, Kyiv' });
      for (const page of [alice, bob]) {
        await page.locator('.room-list a', { hasText: 'Barley, Kyiv' }).waitFor({ state: 'attached', timeout: 25000 });
      }
    });

    await step('a moderator may delete anyone\'s message, an admin any room', async () => {
      await service.call('POST', `/rooms/${roomId}/messages`, 'bob', { content: 'spam, spam, spam' });
      await messageText(alice, 'spam, spam, spam').waitFor();
      const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
      const carol = await openPage(context, 'carol', problems);
      await signIn(carol, base, 'carol', 'moderator');
      assert.equal(await carol.locator('#whoami-role').textContent(), 'moderator');
      await carol.locator('.room-list a', { hasText: 'Wheat exchange' }).click();
      await online(carol);
      assert.ok(await carol.locator('#delete-room').isHidden(), 'a moderator does not delete rooms');
      const spam = carol.locator('#message-list li.msg', { hasText: 'spam, spam, spam' });
      await spam.hover();
      await spam.locator('.msg-delete-button').waitFor();
      assert.equal(await spam.locator('.msg-edit-button').count(), 0, 'but edits only her own');
      await assertActionsClear(spam);
      await shot(carol, 'carol-desktop-moderator.png');
      await spam.locator('.msg-delete-button').click();
      await spam.locator('.msg-delete-button.confirming').click();
      await messageText(alice, 'spam, spam, spam').waitFor({ state: 'detached' });
      await context.close();

      const phone = await newContext(browser, {
        viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1,
      });
      const erin = await openPage(phone, 'erin', problems);
      await signIn(erin, base, 'erin', 'admin');
      await erin.locator('.room-list a', { hasText: 'Barley, Kyiv' }).click();
      await online(erin);
      await erin.locator('#delete-room').waitFor();
      const heights = await headHeights(erin);
      assert.equal(heights.shown, heights.hidden, 'the admin\'s header is as tall as anyone\'s');
      await shot(erin, 'erin-phone-admin.png');
      await erin.locator('#delete-room').click();
      await erin.locator('#delete-room.confirming').click();
      await until('erin to be told', async () => /was deleted/.test(await erin.locator('#rooms-notice').textContent()));
      await phone.close();
    });

    await step('a name that is not ASCII works on REST and the socket', async () => {
      const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
      const olena = await openPage(context, 'olena', problems);
      await signIn(olena, base, 'Олена');
      await olena.locator('.room-list a', { hasText: 'Wheat exchange' }).click();
      await online(olena);
      await olena.locator('#people-list li[data-user="Олена"]').waitFor();
      await send(olena, 'Пшениця є, 300 т');
      assert.equal(await olena.locator('#message-list li.msg.own .msg-author').textContent(), 'Олена');
      await alice.locator('#people-list li[data-user="Олена"]').waitFor();
      await messageText(alice, 'Пшениця є, 300 т').waitFor();
      await context.close();
      await alice.locator('#people-list li[data-user="Олена"]').waitFor({ state: 'detached' });
    });

    await step('a dropped socket resumes with since= and alice misses nothing bob wrote meanwhile', async () => {
      const seqs = await alice.locator('#message-list li.msg').evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
      const lastSeq = Math.max(...seqs);
      const attempts = link.urls.length;
      link.refuse = true;
      link.current.close({ code: 1011, reason: 'network down (test)' });
      await alice.locator('#conn[data-state="reconnecting"]').waitFor();
      // Offline, the page does not know who is online: it shows nobody, and says so.
      await alice.locator('#people-unknown').waitFor();
      assert.equal(await alice.locator('#people-list li').count(), 0, 'no stale names while offline');
      await send(bob, 'while alice was away 1');
      await send(bob, 'while alice was away 2');
      await until('a refused redial', async () => link.urls.length > attempts);
      link.refuse = false;
      await online(alice);
      for (const text of ['while alice was away 1', 'while alice was away 2']) await messageText(alice, text).waitFor();
      const resumed = new URL(link.urls[link.urls.length - 1]);
      assert.equal(resumed.pathname, '/ws', 'the one inbox socket, not a socket per room');
      assert.equal(resumed.searchParams.get('user_id'), 'alice');
      const subscribes = link.sent.map((m) => JSON.parse(m)).filter((f) => f.type === 'subscribe' && f.room_id === roomId);
      assert.equal(subscribes[subscribes.length - 1].since, lastSeq, 'resubscribed after the last message it had');
      // She left this room for "Price history" and came back: one room followed at a time.
      const turns = link.sent.map((m) => JSON.parse(m)).filter((f) => f.room_id === roomId && /subscribe$/.test(f.type)).map((f) => f.type);
      assert.ok(turns.includes('unsubscribe'), `left with unsubscribe: ${turns}`);
      assert.equal(turns[turns.length - 1], 'subscribe', 'and followed again');
      const texts = await alice.locator('#message-list .msg-text').allTextContents();
      assert.equal(texts.filter((t) => t.startsWith('while alice was away')).length, 2, 'each once');
    });

    await step('a server restart: the pages say so, reconnect by themselves and miss nothing', async () => {
      await service.stop();
      await alice.locator('#conn[data-state="reconnecting"]').waitFor();
      await bob.locator('#conn[data-state="reconnecting"]').waitFor();
      // Sent while the server is down: kept as pending and delivered after the restart.
      await bob.locator('#composer-input').fill('sent while offline');
      await bob.locator('#composer-input').press('Enter');
      await bob.locator('#pending-list li', { hasText: 'sent while offline' }).waitFor();
      await until('bob\'s online count to be unknown', async () => (await bob.locator('#people-count').textContent()) === '–');
      await shot(alice, 'alice-reconnecting.png');
      await shot(bob, 'bob-phone-reconnecting.png');
      await service.start();
      await service.call('POST', `/rooms/${roomId}/messages`, 'carol', { content: 'posted right after the restart' });
      for (const page of [alice, bob]) {
        await online(page);
        await messageText(page, 'posted right after the restart').waitFor();
        await messageText(page, 'sent while offline').waitFor();
      }
      await alice.locator('#people-list li[data-user="bob"]').waitFor();
      assert.ok(await alice.locator('#people-unknown').isHidden(), 'known again once reconnected');
      await bob.locator('#pending-list li').waitFor({ state: 'detached' });
      for (const page of [alice, bob]) {
        const texts = await page.locator('#message-list .msg-text').allTextContents();
        assert.equal(texts.filter((t) => t === 'sent while offline').length, 1, 'stored and shown once');
        assert.equal(texts.filter((t) => t === 'posted right after the restart').length, 1, 'shown once');
      }
      await shot(alice, 'alice-reconnected.png');
    });

    await step('alice makes an offer, bob accepts it on his card; bob counters another, alice accepts the counter; both see it live', async () => {
      await alice.locator('#offer-box summary').click();
      await alice.locator('#offer-commodity').fill('wheat');
      await alice.locator('#offer-quantity').fill('250.5');
      await alice.locator('#offer-price').fill('210');
      await alice.locator('#offer-form button[type="submit"]').click();
      const card = (page) => page.locator('#message-list .offer-card', { hasText: '250.5 t of wheat at 210 UAH/t' });
      await card(alice).waitFor();
      await card(bob).locator('button', { hasText: 'Accept' }).waitFor();
      assert.equal(await card(alice).locator('button', { hasText: 'Accept' }).count(), 0, 'the author cannot accept');
      await card(alice).locator('button', { hasText: 'Withdraw' }).waitFor();
      await shot(bob, 'bob-phone-offer.png');
      await card(bob).locator('button', { hasText: 'Accept' }).click();
      for (const page of [alice, bob]) {
        await page.locator('#message-list .offer-card.offer-accepted', { hasText: '250.5 t of wheat' }).waitFor();
        await messageText(page, 'bob accepted the offer').waitFor();
      }
      assert.equal(await card(bob).locator('button').count(), 0, 'no answers once accepted');

      // The seller offers, the buyer counters on his card, the seller accepts the
      // counter: both pages follow every step live.
      await alice.locator('#offer-box summary').click();
      await alice.locator('#offer-commodity').fill('barley');
      await alice.locator('#offer-quantity').fill('100');
      await alice.locator('#offer-price').fill('180');
      await alice.locator('#offer-form button[type="submit"]').click();
      const barley = (page, price) =>
        page.locator('#message-list .offer-card', { hasText: `100 t of barley at ${price} UAH/t` });
      await barley(bob, '180').locator('button', { hasText: 'Counter' }).click();
      await barley(bob, '180').locator('input[aria-label="Counter price"]').fill('175.25');
      await barley(bob, '180').locator('button', { hasText: 'Send counter' }).click();
      for (const page of [alice, bob]) {
        await page.locator('#message-list .offer-card.offer-countered', { hasText: 'barley at 180 UAH/t' }).waitFor();
        await barley(page, '175.25').and(page.locator('.offer-open')).waitFor();
      }
      assert.equal(await barley(bob, '175.25').locator('button', { hasText: 'Accept' }).count(), 0,
        'the buyer cannot accept his own counter');
      await barley(alice, '175.25').locator('button', { hasText: 'Accept' }).click();
      for (const page of [alice, bob]) {
        await barley(page, '175.25').and(page.locator('.offer-accepted')).waitFor();
        await messageText(page, 'alice accepted the offer').waitFor();
      }
      await shot(alice, 'alice-counter-accepted.png');

      // An offer with an expiry counts down; withdrawn, it says so on both pages.
      await alice.locator('#offer-box summary').click();
      await alice.locator('#offer-commodity').fill('corn');
      await alice.locator('#offer-quantity').fill('10');
      await alice.locator('#offer-price').fill('5.5');
      await alice.locator('#offer-minutes').fill('5');
      await alice.locator('#offer-form button[type="submit"]').click();
      const corn = (page) => page.locator('#message-list .offer-card', { hasText: 'of corn' });
      await until('a countdown on bob\'s card', async () =>
        /expires in 4 min|expires in 5 min/.test(await corn(bob).locator('.offer-countdown').textContent()));
      await corn(alice).locator('button', { hasText: 'Withdraw' }).click();
      await corn(bob).and(bob.locator('.offer-withdrawn')).waitFor();
      await messageText(bob, 'alice withdrew the offer').waitFor();
      assert.deepEqual(problems, [], 'no dialog, script error or CSP violation');
    });

    await step('alice deletes the room and bob is told', async () => {
      await alice.locator('#delete-room').click();
      await alice.locator('#delete-room.confirming').click();
      await until('bob to be told', async () => /was deleted/.test(await bob.locator('#rooms-notice').textContent()));
      await bob.locator('#rooms-pane').waitFor();
      assert.equal(await bob.locator('.room-list a', { hasText: 'Wheat exchange' }).count(), 0);
      await shot(bob, 'bob-phone-room-deleted.png');
    });

    // ---- the inbox: two users, three rooms, one socket each ----------------

    const ivanContext = await newContext(browser, { viewport: { width: 1280, height: 800 } });
    const janaContext = await newContext(browser, {
      viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1,
    });
    const ivan = await openPage(ivanContext, 'ivan', problems);
    const jana = await openPage(janaContext, 'jana', problems);
    const sockets = { ivan: [], jana: [] };
    ivan.on('websocket', (ws) => sockets.ivan.push(ws.url()));
    jana.on('websocket', (ws) => sockets.jana.push(ws.url()));
    const inboxItem = (page, id) => page.locator(`#room-list li[data-room-id="${id}"]`);
    const badge = (page, id) => inboxItem(page, id).locator('.badge');
    const inboxRooms = ['Sunflower, Odesa', 'Corn, Lviv', 'Rapeseed, Dnipro'];
    const inboxIds = [];

    await step('rooms created with a member appear in that member\'s inbox without a reload', async () => {
      await signIn(jana, base, 'jana');
      await signIn(ivan, base, 'ivan');
      await jana.locator('#rooms-empty').waitFor();
      for (const name of inboxRooms) {
        await ivan.locator('#new-room-name').fill(name);
        await ivan.locator('#new-room-members').fill('jana');
        await ivan.locator('#new-room-form button[type=submit]').click();
        await until(`ivan in ${name}`, async () => (await ivan.locator('#room-name').textContent()) === name);
        await online(ivan);
        const id = Number(/#\/rooms\/(\d+)$/.exec(ivan.url())[1]);
        inboxIds.push(id);
        await inboxItem(jana, id).locator('a', { hasText: name }).waitFor();
        await inboxItem(ivan, id).waitFor();
      }
      assert.ok(await jana.locator('#rooms-empty').isHidden(), 'the inbox is no longer empty');
      assert.equal(await jana.locator('#room-list .badge').count(), 0, 'nothing unread yet');
    });

    await step('her badges count his messages live, with the last message of each room', async () => {
      const [first, second, third] = inboxIds;
      await inboxItem(ivan, first).locator('a').click();
      await online(ivan);
      for (let i = 1; i <= 3; i += 1) {
        await send(ivan, `sunflower offer ${i}`);
        await until(`jana's badge to say ${i}`, async () => (await badge(jana, first).textContent()) === String(i));
      }
      await until('the last message in her list', async () => (await inboxItem(jana, first).locator('.room-last').textContent()) === 'ivan: sunflower offer 3');
      await inboxItem(ivan, second).locator('a').click();
      await online(ivan);
      await send(ivan, 'corn, 40 t');
      await until('jana\'s badge of the second room', async () => (await badge(jana, second).textContent()) === '1');
      // Most recent activity first; a room without news has no badge.
      await until('the second room on top', async () => Number(await jana.locator('#room-list li').first().getAttribute('data-room-id')) === second);
      assert.equal(await badge(jana, third).count(), 0);
      assert.equal(await ivan.locator('#room-list .badge').count(), 0, 'his own messages are not unread for him');
      await shot(jana, 'jana-phone-inbox-badges.png');
      await shot(ivan, 'ivan-desktop-inbox.png');
    });

    await step('opening the room clears her badge, and he sees "seen" on what she read, live', async () => {
      const [first, second] = inboxIds;
      await inboxItem(ivan, first).locator('a').click();
      await online(ivan);
      const mine = ivan.locator('#message-list li.msg.own');
      await until('his three messages', async () => (await mine.count()) === 3);
      assert.equal(await ivan.locator('#message-list li.msg.own.seen').count(), 0, 'not seen before she opens the room');
      await inboxItem(jana, first).locator('a').click();
      await online(jana);
      await messageText(jana, 'sunflower offer 3').waitFor();
      await until('every message he sent to be seen', async () => (await ivan.locator('#message-list li.msg.own.seen').count()) === 3);
      assert.match(await mine.first().locator('.msg-seen').getAttribute('title'), /jana/);
      // While she has the room open, what he sends is read as it comes.
      await send(ivan, 'sunflower offer 4');
      await messageText(jana, 'sunflower offer 4').waitFor();
      await until('the new message to be seen too', async () => (await ivan.locator('#message-list li.msg.own.seen').count()) === 4);
      await shot(ivan, 'ivan-desktop-seen.png');
      await shot(jana, 'jana-phone-room.png');
      await jana.locator('#back').click();
      await inboxItem(jana, first).waitFor();
      assert.equal(await badge(jana, first).count(), 0, 'the room she read has no badge');
      assert.equal(await badge(jana, second).textContent(), '1', 'the other room still counts');
      assert.ok(jana.url().endsWith('#/'));
    });

    await step('the inbox survives a reload; a deleted room leaves it without one', async () => {
      const [first, second, third] = inboxIds;
      await jana.reload();
      await until('the badge from /me/rooms', async () => (await badge(jana, second).textContent()) === '1');
      assert.equal(await badge(jana, first).count(), 0);
      await inboxItem(ivan, third).locator('a').click();
      await online(ivan);
      await ivan.locator('#delete-room').click();
      await ivan.locator('#delete-room.confirming').click();
      for (const page of [jana, ivan]) {
        await inboxItem(page, third).waitFor({ state: 'detached' });
        assert.equal(await page.locator(`.room-list li[data-room-id="${third}"]`).count(), 0, 'in no list at all');
      }
      await shot(jana, 'jana-phone-inbox-after-delete.png');
      // One socket per page load, always the inbox socket.
      assert.equal(sockets.ivan.length, 1, `ivan opened one socket: ${sockets.ivan}`);
      assert.equal(sockets.jana.length, 2, `jana one per load: ${sockets.jana}`);
      for (const url of [...sockets.ivan, ...sockets.jana]) assert.equal(new URL(url).pathname, '/ws');
      await ivanContext.close();
      await janaContext.close();
    });

    await step('with authentication required, a pasted token signs in; REST and the socket accept it', async () => {
      const secureDir = path.join(dir, 'auth');
      fs.mkdirSync(secureDir);
      const secure = new Service(await freePort(), secureDir, {
        AUTH_MODE: 'required', JWT_SECRET: 'e2e-secret-that-is-long-enough-for-hs256',
      });
      try {
        await secure.start();
        const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
        const dana = await openPage(context, 'dana', problems);
        await dana.goto(`${secure.base}/`);
        await dana.locator('#login-token').waitFor();
        assert.ok(await dana.locator('#login-user').isHidden(), 'no name field when a token is required');
        assert.ok(await dana.locator('#login-role').isHidden(), 'roles come from the token');
        await until('the token hint', async () => /requires a token/.test(await dana.locator('#login-mode').textContent()));
        assert.equal(await dana.locator('#login-mode code').textContent(), 'chat-room token --sub NAME');
        assert.ok(!(await dana.locator('#login-mode').textContent()).includes('`'), 'no literal backticks');
        await shot(dana, 'login-token-desktop.png');
        const phone = await newContext(browser, {
          viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1,
        });
        const small = await openPage(phone, 'token-phone', problems);
        await small.goto(`${secure.base}/`);
        await small.locator('#login-mode code').waitFor();
        await shot(small, 'login-token-phone.png');
        await phone.close();
        await dana.locator('#login-token').fill('not-a-token');
        await dana.locator('#login-submit').click();
        await until('the refusal', async () => /refused/.test(await dana.locator('#login-error').textContent()));
        await dana.locator('#login-token').fill(secure.mintToken('dana', ['moderator']));
        await dana.locator('#login-submit').click();
        await until('dana to be signed in', async () => (await dana.locator('#whoami').textContent()) === 'dana');
        assert.equal(await dana.locator('#whoami-role').textContent(), 'moderator', 'the token\'s roles');
        await dana.locator('#new-room-name').fill('Token room');
        await dana.locator('#new-room-form button[type=submit]').click();
        await online(dana);
        await send(dana, 'hello with a token');
        assert.equal(await dana.locator('#message-list li.msg.own .msg-author').first().textContent(), 'dana');
        await dana.locator('#people-list li[data-user="dana"]').waitFor();
        await shot(dana, 'dana-desktop-token.png');
        await context.close();
      } finally {
        await secure.stop();
      }
    });

    await step('with CORS_ORIGINS set the page at the service\'s own address goes live; a socket refused behind a proxy is explained', async () => {
      const strictDir = path.join(dir, 'origins');
      fs.mkdirSync(strictDir);
      const strict = new Service(await freePort(), strictDir, { CORS_ORIGINS: 'https://graintrade.example' });
      const proxy = await hostRewritingProxy(strict.port);
      try {
        await strict.start();
        const desktop = await newContext(browser, { viewport: { width: 1280, height: 800 } });
        const frank = await openPage(desktop, 'frank', problems);
        await signIn(frank, strict.base, 'frank');
        await frank.locator('#new-room-name').fill('Origins');
        await frank.locator('#new-room-form button[type=submit]').click();
        await online(frank);
        await send(frank, 'live at the service\'s own address');

        const refused = [];
        for (const [name, options, size] of [
          ['gina', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 }, 'phone'],
          ['hugo', { viewport: { width: 1280, height: 800 } }, 'desktop'],
        ]) {
          const context = await newContext(browser, options);
          const page = await openPage(context, name, problems);
          await signIn(page, proxy.base, name);
          await page.locator('.room-list a', { hasText: 'Origins' }).click();
          await page.locator('#conn[data-state="refused"]').waitFor();
          await until(`${name} to be told why`, async () => /CORS_ORIGINS/.test(await page.locator('#room-alert').textContent()));
          await messageText(page, 'live at the service\'s own address').waitFor();
          await send(page, `${name} writes through the proxy`);
          await messageText(frank, `${name} writes through the proxy`).waitFor();
          await shot(page, `${name}-${size}-socket-refused.png`);
          refused.push(context);
        }
        await until('the refusal in the server log', async () => {
          const log = fs.readFileSync(path.join(strictDir, 'server.log'), 'utf8');
          return log.includes('socket refused') && log.includes(proxy.base);
        });
        for (const context of [desktop, ...refused]) await context.close();
      } finally {
        await proxy.close();
        await strict.stop();
      }
    });

    await step('the API docs pages load nothing from another host', async () => {
      for (const [context, size] of [[desktop, 'desktop'], [phone, 'phone']]) {
        const page = await openPage(context, `docs-${size}`, problems);
        const elsewhere = [];
        page.on('request', (request) => {
          const url = request.url();
          if (!url.startsWith(`${base}/`) && !url.startsWith('data:') && !url.startsWith('blob:')) elsewhere.push(url);
        });
        await page.goto(`${base}/docs`);
        await page.locator('.swagger-ui .info .title').waitFor();
        await shot(page, `docs-${size}.png`);
        await page.goto(`${base}/redoc`);
        await page.getByText('API docs by Redocly').first().waitFor({ state: 'attached' });
        await page.locator('h1').first().waitFor();
        await shot(page, `redoc-${size}.png`);
        assert.deepEqual(elsewhere, [], `the ${size} docs pages fetched from other hosts`);
        await page.close();
      }
    });

    assert.deepEqual(problems, [], 'no dialog, script error or CSP violation');
    passed = true;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await service.stop().catch(() => {});
    if (passed) {
      fs.rmSync(dir, { recursive: true, force: true });
    } else {
      console.error(`\nproblems seen: ${JSON.stringify(problems, null, 2)}`);
      console.error(`server log: ${path.join(dir, 'server.log')}`);
    }
  }
  console.log('e2e: all steps passed');
}

main().catch((error) => {
  console.error(`\nFAILED: ${error.stack || error}`);
  process.exit(1);
});
