// TLS (node:tls) and authentication through the Node binding, against memcached started with
// -Z (certificates made for the run by the repository's memlock-test-pki) and -Y.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as memlock from '../src/index.js';
import { MemcachedLock } from '../src/index.js';
import { startMemcached } from '../support/memcached.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const USER = 'alice';
const PASSWORD = 's3cret-Pa55word';
let pki;
let authFile;
const servers = [];
const locks = [];

before(() => {
  const binary = process.env.MEMLOCK_TEST_PKI ?? `${REPO}target/debug/memlock-test-pki`;
  assert.ok(existsSync(binary), `no ${binary}: \`cargo test --no-run\` builds it (just test does)`);
  const dir = mkdtempSync(`${tmpdir()}/memlock-node-pki-`);
  pki = JSON.parse(execFileSync(binary, [dir], { encoding: 'utf8' }));
  authFile = `${dir}/auth`;
  writeFileSync(authFile, `${USER}:${PASSWORD}\n`);
});
after(async () => {
  await Promise.all(locks.map((l) => l.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

async function server(args) {
  const started = await startMemcached(args);
  servers.push(started);
  return started;
}

const tlsArgs = (verifyClients = false) => [
  '-Z',
  '-o',
  `ssl_chain_cert=${pki.server_cert},ssl_key=${pki.server_key}${verifyClients ? `,ssl_verify_mode=2,ssl_ca_cert=${pki.ca}` : ''}`,
];

async function opened(on, extra = {}) {
  const lock = new MemcachedLock();
  lock.configure({ ...on.config, 'options.timeout': 1000, 'options.reconnect': 1000, ...extra });
  await lock.open(null);
  locks.push(lock);
  return lock;
}

const TLS = () => ({ 'connection.protocol': 'memcacheds', 'credential.ssl_ca_file': pki.ca });

test('the right password locks; a wrong or missing one is UNAUTHORIZED', async () => {
  const mc = await server(['-Y', authFile]);
  const good = await opened(mc, { 'credential.username': USER, 'credential.password': PASSWORD });
  assert.equal(await good.tryAcquireLock(null, 'node-auth', 10_000), true);
  for (const extra of [{}, { 'credential.username': USER, 'credential.password': 'wrong-password' }]) {
    const lock = await opened(mc, extra);
    await assert.rejects(lock.tryAcquireLock(null, 'node-refused', 10_000), (e) => {
      assert.ok(e instanceof memlock.UnauthorizedException, String(e));
      assert.equal(e.code, 'UNAUTHORIZED');
      assert.ok(!String(e.message).includes(PASSWORD) && !String(e.message).includes('wrong-password'));
      return true;
    });
  }
  await good.releaseLock(null, 'node-auth');
});

test('a credential store in pip-services References resolves credential.store_key', async () => {
  const v3 = (await import('pip-services3-commons-node')).default;
  const mc = await server(['-Y', authFile]);
  const store = { lookup: async (_context, key) => (key === 'mc' ? { username: USER, password: PASSWORD } : null) };
  const lock = new MemcachedLock();
  locks.push(lock);
  lock.configure({ ...mc.config, 'credential.store_key': 'mc' });
  lock.setReferences(v3.References.fromTuples(new v3.Descriptor('test', 'credential-store', 'memory', 'default', '1.0'), store));
  await lock.open(null);
  assert.equal(await lock.tryAcquireLock(null, 'node-store', 10_000), true);
});

test('locks over TLS; an untrusted certificate is TLS_FAILED', async () => {
  const mc = await server(tlsArgs());
  const lock = await opened(mc, TLS());
  const other = await opened(mc, TLS());
  const lease = await lock.tryAcquire('node-tls', 10_000);
  assert.notEqual(lease, null);
  assert.equal(await other.tryAcquire('node-tls', 10_000), null);
  assert.equal(await lock.release(lease), true);
  const untrusted = await opened(mc, { ...TLS(), 'credential.ssl_ca_file': pki.other_ca });
  await assert.rejects(untrusted.tryAcquireLock(null, 'k', 1000), (e) => {
    assert.equal(e.code, 'TLS_FAILED', String(e));
    assert.match(e.message, /not trusted/);
    return true;
  });
  const misnamed = await opened(mc, { ...TLS(), 'credential.ssl_server_name': 'wrong.example' });
  await assert.rejects(misnamed.tryAcquireLock(null, 'k', 1000), (e) => e.code === 'TLS_FAILED');
});

test('TLS and plaintext mismatches fail within the timeouts, pointing at TLS', async () => {
  const tlsServer = await server(tlsArgs());
  const plainServer = await server([]);
  const cases = [
    [await opened(tlsServer), 'CONNECT_FAILED'],
    [await opened(plainServer, TLS()), 'TLS_FAILED'],
  ];
  for (const [lock, code] of cases) {
    const started = Date.now();
    await assert.rejects(lock.tryAcquireLock(null, 'k', 1000), (e) => {
      assert.equal(e.code, code, String(e));
      assert.match(e.message, /TLS/, String(e));
      return true;
    });
    assert.ok(Date.now() - started < 1500, 'bounded by options.reconnect and options.timeout (1 s), with a margin');
  }
});

test('mutual TLS presents the client certificate; insecure mode is explicit', async () => {
  const mc = await server(tlsArgs(true));
  const client = { 'credential.ssl_crt_file': pki.client_cert, 'credential.ssl_key_file': pki.client_key };
  const withCert = await opened(mc, { ...TLS(), ...client });
  assert.equal(await withCert.tryAcquireLock(null, 'node-mtls', 10_000), true);
  const without = await opened(mc, TLS());
  await assert.rejects(without.tryAcquireLock(null, 'node-mtls-2', 1000), (e) => {
    assert.equal(e.code, 'TLS_FAILED', String(e));
    assert.match(e.message, /certificate/);
    return true;
  });
  const warned = new Promise((resolve) => process.once('warning', resolve));
  const insecure = await opened(mc, { ...TLS(), ...client, 'credential.ssl_ca_file': pki.other_ca, 'credential.ssl_insecure': true });
  assert.match(String((await warned).message), /verification is OFF/);
  assert.equal(await insecure.tryAcquireLock(null, 'node-insecure', 10_000), true);
});

test('TLS with authentication', async () => {
  const mc = await server([...tlsArgs(), '-Y', authFile]);
  const lock = await opened(mc, { ...TLS(), 'credential.username': USER, 'credential.password': PASSWORD });
  assert.equal(await lock.tryAcquireLock(null, 'node-both', 10_000), true);
});
