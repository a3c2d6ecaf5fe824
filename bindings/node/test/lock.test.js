// MemcachedLock for Node against real memcached: the seed's semantics, leases, the CLI's
// handles, concurrency, and an event loop that stays free while the lock waits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as memlock from '../src/index.js';
import { Lease, MemcachedLock } from '../src/index.js';
import { startMemcached, waitUntil } from '../support/memcached.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let server;
const locks = [];

before(async () => {
  server = await startMemcached();
});
after(async () => {
  await Promise.all(locks.map((l) => l.close()));
  await server.stop();
});

async function opened(options = {}, on = server) {
  const lock = new MemcachedLock();
  lock.configure({ ...on.config, ...Object.fromEntries(Object.entries(options).map(([k, v]) => [`options.${k}`, v])) });
  await lock.open(null);
  locks.push(lock);
  return lock;
}

function cli(...args) {
  const binary = process.env.MEMLOCK_BIN ?? `${REPO}target/debug/memlock`;
  assert.ok(existsSync(binary), `no memlock binary at ${binary}: \`cargo build -p memlock-host\` (just test does)`);
  return spawnSync(binary, ['--server', server.address, ...args], { encoding: 'utf8' });
}

test('the pip-services lock fixture: try, acquire with timeout, release', async () => {
  const lock = await opened();
  const other = await opened();
  assert.equal(lock.isOpen(), true);
  assert.equal(await lock.tryAcquireLock('123', 'key1', 3000), true);
  assert.equal(await other.tryAcquireLock('123', 'key1', 3000), false);
  await lock.releaseLock('123', 'key1');
  assert.equal(await other.tryAcquireLock('123', 'key1', 3000), true);
  await other.releaseLock('123', 'key1');
  await lock.acquireLock(null, 'key2', 3000, 1000);
  await assert.rejects(other.acquireLock('trace-7', 'key2', 3000, 300), (e) => {
    assert.ok(e instanceof memlock.ConflictException);
    assert.equal(e.code, 'LOCK_TIMEOUT');
    assert.equal(e.category, 'Conflict');
    assert.equal(e.message, 'Acquiring lock key2 failed on timeout');
    assert.equal(e.trace_id, 'trace-7');
    return true;
  });
  await lock.releaseLock(null, 'key2');
  await lock.releaseLock(null, 'never-taken'); // a no-op, as in pip-services
});

test('bad config is a ConfigException naming the key, thrown by configure', async () => {
  for (const [key, value] of [['connection.port', '99999'], ['options.timeout', 'soon'], ['options.unknown', '1']]) {
    const lock = new MemcachedLock();
    assert.throws(() => lock.configure({ [key]: value }), (e) => e instanceof memlock.ConfigException && e.code === 'INVALID_CONFIG' && e.message.includes(key));
  }
  const empty = new MemcachedLock();
  empty.configure({});
  await assert.rejects(empty.open(null), (e) => e.code === 'NO_CONNECTION');
  const unopened = new MemcachedLock();
  unopened.configure(server.config);
  await assert.rejects(unopened.tryAcquireLock(null, 'k', 1000), (e) => e instanceof memlock.InvalidStateException && e.code === 'NOT_OPENED');
});

test('a sub-second ttl expires', async () => {
  const lock = await opened();
  const other = await opened();
  assert.equal(await lock.tryAcquireLock(null, 'short', 500), true);
  assert.equal(await other.tryAcquireLock(null, 'short', 500), false);
  await waitUntil(() => other.tryAcquireLock(null, 'short', 500), 5000);
});

test('release is owner-checked', async () => {
  const lock = await opened();
  const other = await opened();
  const lease = await lock.tryAcquire('job', 600);
  await waitUntil(async () => (await other.tryAcquire('job', 30_000)) !== null, 5000);
  assert.equal(await lock.release(lease), false);
  assert.equal(await other.tryAcquire('job', 1000), null);
});

test('keys cannot inject commands', async () => {
  const lock = await opened();
  await server.raw('set victim 0 0 1\r\nx\r\n');
  for (const key of ['a b', 'x\r\nflush_all', 'x\r\ndelete victim', '\u0000', 'ключ']) {
    assert.equal(await lock.tryAcquireLock(null, key, 5000), true, key);
    await lock.releaseLock(null, key);
  }
  assert.match(await server.raw('get victim\r\n'), /VALUE victim/);
  await assert.rejects(lock.tryAcquireLock(null, '', 1000), (e) => e.code === 'INVALID_KEY');
  await assert.rejects(lock.tryAcquireLock(null, 'k', 2n ** 64n + 1000n), (e) => e.code === 'INVALID_TTL');
});

test('a stalled server times out without blocking the event loop', async () => {
  const lock = await opened({ timeout: 300 });
  assert.equal(await lock.tryAcquireLock(null, 'warm', 1000), true);
  server.pause();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  try {
    const started = Date.now();
    await assert.rejects(lock.tryAcquireLock(null, 'stalled', 1000), (e) => e instanceof memlock.ConnectionException && e.code === 'TIMEOUT');
    assert.ok(Date.now() - started < 2300, 'bounded by options.timeout plus a margin');
    assert.ok(ticks >= 10, `the event loop kept running: ${ticks} ticks`);
  } finally {
    clearInterval(timer);
    server.resume();
  }
});

test('100 concurrent tryAcquireLock calls on distinct keys all succeed', async () => {
  const lock = await opened();
  const keys = Array.from({ length: 100 }, (_, i) => `many-${i}`);
  const results = await Promise.all(keys.map((k) => lock.tryAcquireLock(null, k, 10_000)));
  assert.deepEqual(results, keys.map(() => true));
  await Promise.all(keys.map((k) => lock.releaseLock(null, k)));
  const again = await opened();
  assert.deepEqual(await Promise.all(keys.map((k) => again.tryAcquireLock(null, k, 1000))), keys.map(() => true));
});

test('concurrent acquireLock calls on one key exclude each other', async () => {
  const lock = await opened();
  let inside = 0;
  let overlaps = 0;
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let i = 0; i < 5; i++) {
        await lock.acquireLock(null, 'shared', 5000, 30_000);
        inside++;
        if (inside > 1) overlaps++;
        await new Promise((r) => setTimeout(r, 1));
        inside--;
        await lock.releaseLock(null, 'shared');
      }
    }),
  );
  assert.equal(overlaps, 0);
});

test('close ends a blocking acquire with CANCELLED', async () => {
  const holder = await opened();
  const lock = await opened();
  assert.equal(await holder.tryAcquireLock(null, 'busy', 30_000), true);
  const sets = async () => Number(/STAT cmd_set (\d+)/.exec(await server.raw('stats\r\n'))[1]);
  const before = await sets();
  const waiting = lock.acquireLock(null, 'busy', 30_000, 60_000);
  // The waiter has tried twice: it is in its wait between attempts.
  await waitUntil(async () => (await sets()) >= before + 2);
  const started = Date.now();
  await lock.close();
  await assert.rejects(waiting, (e) => e instanceof memlock.InvalidStateException && e.code === 'CANCELLED');
  assert.ok(Date.now() - started < 5000);
  await holder.releaseLock(null, 'busy');
});

test('fencing tokens grow, extend prolongs, a lost lease is LOCK_LOST', async () => {
  const lock = await opened();
  const other = await opened();
  const first = await lock.tryAcquire('ext', 1000);
  assert.ok(await lock.release(first));
  const lease = await lock.tryAcquire('ext', 1000);
  assert.ok(lease.fencingToken > first.fencingToken);
  const extended = await lock.extend(lease, 30_000);
  assert.notEqual(extended.cas, lease.cas);
  assert.equal(extended.fencingToken, lease.fencingToken);
  assert.ok(extended.remainingMs() > 25_000 && extended.remainingMs() <= 30_000);
  assert.ok(await lock.release(extended));
  assert.notEqual(await other.tryAcquire('ext', 30_000), null);
  await assert.rejects(lock.extend(extended, 30_000), (e) => e instanceof memlock.ConflictException && e.code === 'LOCK_LOST');
});

test('handles are the CLI\'s, and a mixed fleet with the CLI excludes itself', async () => {
  const lock = await opened();
  const lease = await lock.tryAcquire('shared-cli', 30_000);
  assert.equal(Lease.fromHandle(lease.handle()).handle(), lease.handle());
  assert.equal(cli('try-acquire', 'shared-cli').status, 1);
  assert.equal(cli('release', lease.handle()).status, 0);
  const taken = cli('try-acquire', 'shared-cli', '--ttl', '30000');
  assert.equal(taken.status, 0, taken.stderr);
  assert.equal(await lock.tryAcquireLock(null, 'shared-cli', 1000), false);
  const extended = await lock.extend(taken.stdout.trim(), 60_000);
  assert.equal(await lock.release(extended), true);
  assert.equal(await lock.release(taken.stdout.trim()), false);
  for (const bad of ['', 'ml1.', 'ml1.61.0123456789abcdef0123456789abcdeg.1.1:2:3.5']) {
    await assert.rejects(lock.release(bad), (e) => e instanceof memlock.BadRequestException && e.code === 'INVALID_LEASE');
  }
});

test('withLock renews while the work runs and releases after', async () => {
  const lock = await opened();
  const other = await opened();
  const seen = new Set();
  await lock.withLock('held', { ttl: 600, timeout: 1000 }, async (held) => {
    await waitUntil(() => {
      seen.add(held.lease.cas);
      return seen.size >= 4;
    }, 10_000);
    assert.equal(held.lost, null);
    assert.equal(await other.tryAcquire('held', 1000), null);
  });
  assert.notEqual(await other.tryAcquire('held', 1000), null);
});

test('README\'s Node example runs as printed', async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(`${REPO}README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Node.js'));
  const example = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(example, "README's Node section has no example");
  const code = example[1]
    .replace("from 'memlock'", `from '${new URL('../src/index.js', import.meta.url).href}'`)
    .replaceAll('11211', String(server.port))
    .replaceAll("'localhost'", "'127.0.0.1'");
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const file = `${mkdtempSync(`${tmpdir()}/memlock-readme-`)}/example.mjs`;
  writeFileSync(file, code);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
});


test('releaseLock after close and reopen releases', async () => {
  const lock = await opened();
  const other = await opened();
  assert.equal(await lock.tryAcquireLock(null, 'kept', 30_000), true);
  await lock.close();
  await assert.rejects(lock.releaseLock(null, 'kept'), (e) => e.code === 'NOT_OPENED');
  await lock.open(null);
  await lock.releaseLock(null, 'kept');
  assert.equal(await other.tryAcquireLock(null, 'kept', 1000), true);
});

test('a bad argument is a bad request and leaves the lock working', async () => {
  const lock = await opened();
  assert.equal(await lock.tryAcquireLock(null, 'arg-victim', 30_000), true);
  await assert.rejects(lock.tryAcquireLock(null, 3, 1000), (e) => e.code === 'INVALID_KEY');
  await assert.rejects(lock.tryAcquireLock(null, 'k', true), (e) => e.code === 'INVALID_TTL');
  await assert.rejects(lock.tryAcquireLock(null, 'k', 1.5), (e) => e.code === 'INVALID_TTL');
  assert.equal(await lock.tryAcquireLock({ traceId: 42 }, 'k-traced', 1000), true);
  // The seed lease taken before is still known: releaseLock releases it.
  await lock.releaseLock(null, 'arg-victim');
  const other = await opened();
  assert.equal(await other.tryAcquireLock(null, 'arg-victim', 1000), true);
});

test('holders can renew and release while every thread waits in a blocking acquire', async () => {
  const lock = await opened();
  let inside = 0;
  let overlaps = 0;
  const lost = [];
  await Promise.all(
    Array.from({ length: 20 }, () =>
      lock
        .withLock('starve', { ttl: 600, timeout: 30_000 }, async () => {
          inside++;
          if (inside > 1) overlaps++;
          await new Promise((r) => setTimeout(r, 250));
          inside--;
        })
        .catch((e) => lost.push(e.code)),
    ),
  );
  assert.equal(overlaps, 0);
  assert.deepEqual(lost, []);
});

test('close during a blocking acquire that is still starting cancels it', async () => {
  const holder = await opened();
  const lock = await opened();
  assert.equal(await holder.tryAcquireLock(null, 'racing', 30_000), true);
  const waiting = lock.acquireLock(null, 'racing', 30_000, 8000).then(
    () => 'acquired',
    (e) => e.code,
  );
  await new Promise((r) => setImmediate(r));
  await lock.close();
  const outcome = await waiting;
  assert.ok(outcome === 'CANCELLED' || outcome === 'NOT_OPENED', outcome);
  await holder.releaseLock(null, 'racing');
});

test('close closes the connections of every thread', async () => {
  const stats = async () => Number(/STAT curr_connections (\d+)/.exec(await server.raw('stats\r\n'))[1]);
  const before = await stats();
  for (let round = 0; round < 3; round++) {
    const lock = new MemcachedLock();
    lock.configure(server.config);
    await lock.open(null);
    await Promise.all(Array.from({ length: 8 }, (_, i) => lock.tryAcquire(`conn-${round}-${i}`, 1000)));
    await lock.close();
  }
  await waitUntil(async () => (await stats()) <= before, 10_000);
});

test('withLock releases as soon as the work is done', async () => {
  const lock = await opened();
  const other = await opened();
  const started = Date.now();
  await lock.withLock('prompt', { ttl: 10_000, timeout: 1000 }, async () => {});
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  assert.equal(await other.tryAcquireLock(null, 'prompt', 1000), true);
});

test('a lost I/O thread fails the calls in flight at once and the lock recovers', async () => {
  const { ioThreadForTests } = await import('../src/pool.js');
  const lock = await opened({ timeout: 20_000 });
  assert.equal(await lock.tryAcquireLock(null, 'io-warm', 1000), true);
  server.pause();
  try {
    const stalled = lock.tryAcquireLock(null, 'io-stalled', 1000).then(
      () => null,
      (e) => e,
    );
    const started = Date.now();
    await ioThreadForTests().terminate();
    const error = await stalled;
    assert.ok(error instanceof memlock.ApplicationException, `rejected with ${error}`);
    assert.ok(Date.now() - started < 2000, `failed ${Date.now() - started} ms after the I/O thread died, not at options.timeout`);
  } finally {
    server.resume();
  }
  assert.equal(await lock.tryAcquireLock(null, 'io-after', 1000), true, 'a new I/O thread serves the next call');
  await lock.releaseLock(null, 'io-after');
});

test('a process that never closes its lock still exits', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const file = `${mkdtempSync(`${tmpdir()}/memlock-exit-`)}/forget.mjs`;
  writeFileSync(
    file,
    `import { MemcachedLock } from '${new URL('../src/index.js', import.meta.url).href}';
const lock = new MemcachedLock();
lock.configure({ 'connection.host': '127.0.0.1', 'connection.port': ${server.port} });
await lock.open(null);
console.log(await lock.tryAcquireLock(null, 'forgotten', 60000));
`,
  );
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.signal, null, 'the process had to be killed: something kept it alive');
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'true');
});
