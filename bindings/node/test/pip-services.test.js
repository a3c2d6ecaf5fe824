// memlock in a pip-services application: its exception classes when pip-services is installed
// (the test environment installs pip-services4-commons-node and pip-services3-commons-node as
// dev dependencies), its References and Descriptor for discovery, and pip-services-shaped
// fallbacks when it is not installed.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import * as memlock from '../src/index.js';
import { MemcachedLock } from '../src/index.js';
import * as errorsModule from '../src/errors.js';
import { startMemcached } from '../support/memcached.js';

const require = createRequire(import.meta.url);
const v4 = require('pip-services4-commons-node');
const v3 = require('pip-services3-commons-node');
let server;
const locks = [];

before(async () => {
  server = await startMemcached();
});
after(async () => {
  await Promise.all(locks.map((l) => l.close()));
  await server.stop();
});

test('with pip-services 4 installed, a timeout is its ConflictException with the trace id', async () => {
  const holder = new MemcachedLock();
  const waiter = new MemcachedLock();
  locks.push(holder, waiter);
  for (const lock of [holder, waiter]) {
    lock.configure(server.config);
    await lock.open(null);
  }
  await holder.acquireLock(null, 'pip-key', 10_000, 1000);
  await assert.rejects(waiter.acquireLock('trace-9', 'pip-key', 10_000, 200), (e) => {
    assert.ok(e instanceof v4.ConflictException, `${e?.constructor?.name} is not pip-services' ConflictException`);
    assert.ok(e instanceof v4.ApplicationException);
    assert.equal(memlock.ConflictException, v4.ConflictException);
    assert.equal(e.code, 'LOCK_TIMEOUT');
    assert.equal(e.category, 'Conflict');
    assert.equal(e.status, 409);
    assert.equal(e.trace_id, 'trace-9');
    return true;
  });
  // A bad configuration is pip-services' ConfigException, thrown by configure.
  assert.throws(() => waiter.configure({ 'options.retry_timeout': 'soon' }), (e) => e instanceof v4.ConfigException);
  await holder.releaseLock(null, 'pip-key');
});

test('a discovery service registered in pip-services References resolves connection.discovery_key', async () => {
  const asked = [];
  const discovery = {
    // pip-services 4 style: a promise of ConnectionParams-like objects.
    resolveAll: async (context, key) => {
      asked.push([context, key]);
      return [{ host: '127.0.0.1', port: server.port }];
    },
  };
  const references = v3.References.fromTuples(new v3.Descriptor('test', 'discovery', 'memory', 'default', '1.0'), discovery);
  const lock = new MemcachedLock();
  locks.push(lock);
  lock.configure({ 'connection.discovery_key': 'cache-servers' });
  lock.setReferences(references);
  await lock.open('trace-d');
  assert.deepEqual(asked, [['trace-d', 'cache-servers']]);
  assert.equal(await lock.tryAcquireLock(null, 'discovered-key', 5000), true);
  const direct = new MemcachedLock();
  locks.push(direct);
  direct.configure(server.config);
  await direct.open(null);
  assert.equal(await direct.tryAcquireLock(null, 'discovered-key', 5000), false, 'the discovered server is the real one');
  await lock.releaseLock(null, 'discovered-key');
});

test('a pip-services 3 discovery service (callback style) is resolved too', async () => {
  const discovery = {
    resolveAll(correlationId, key, callback) {
      setImmediate(() => callback(null, [{ host: '127.0.0.1', port: server.port }]));
    },
  };
  const lock = new MemcachedLock();
  locks.push(lock);
  lock.configure({ 'connection.discovery_key': 'cache-servers' });
  lock.setReferences(v3.References.fromTuples(new v3.Descriptor('test', 'discovery', 'memory', 'default', '1.0'), discovery));
  await lock.open(null);
  assert.equal(await lock.tryAcquireLock(null, 'discovered-v3', 5000), true);
  await lock.releaseLock(null, 'discovered-v3');
});

test('without pip-services, the exceptions have pip-services 4 fields and builders', () => {
  const missing = () => {
    throw Object.assign(new Error('not installed'), { code: 'MODULE_NOT_FOUND' });
  };
  const classes = errorsModule.resolveExceptions(missing);
  assert.equal(classes, errorsModule.fallbackExceptions);
  const e = new classes.ConflictException('t-1', 'LOCK_TIMEOUT', 'waited too long');
  assert.ok(e instanceof Error && e instanceof classes.ApplicationException);
  assert.deepEqual([e.category, e.code, e.status, e.trace_id, e.message, e.name], ['Conflict', 'LOCK_TIMEOUT', 409, 't-1', 'waited too long', 'LOCK_TIMEOUT']);
  const built = new classes.InternalException().withCode('X').withStatus(503).withTraceId('t-2').withDetails('k', 1).withCause(new Error('why'));
  assert.deepEqual([built.code, built.status, built.trace_id, built.details, built.getCauseString()], ['X', 503, 't-2', { k: 1 }, 'why']);
  // pip-services 3 (correlation ids) is used when 4 is not installed.
  const only3 = (name) => (name === 'pip-services3-commons-node' ? v3 : missing());
  assert.equal(errorsModule.resolveExceptions(only3).ConflictException, v3.ConflictException);
});
