// Compiled (not run) by `just node-test`: the declarations in src/index.d.ts accept what the
// README and the tests do, and reject what the code rejects.
import {
  ApplicationException,
  ConflictException,
  Lease,
  MemcachedLock,
  type Held,
} from '../../src/index.js';

export async function usage(): Promise<void> {
  const lock = new MemcachedLock();
  lock.configure({ 'connection.host': 'localhost', 'connection.port': 11211 });
  lock.configure([['connection.uri', 'memcached://localhost:11211']]);
  lock.setReferences(null);
  await lock.open('123');
  await lock.open({ traceId: 'x' });
  const taken: boolean = await lock.tryAcquireLock(null, 'key1', 3000);
  await lock.acquireLock('123', new Uint8Array([1, 2]), 3000n, 1000);
  await lock.releaseLock(undefined, 'key1');
  const lease: Lease | null = await lock.tryAcquire('job', 10_000);
  if (lease !== null) {
    const token: bigint = lease.fencingToken;
    const extended: Lease = await lock.extend(lease, 30_000);
    const released: boolean = await lock.release(extended.handle());
    void [token, released];
  }
  const result: number = await lock.withLock('job', { ttl: 1000n, timeout: 500 }, async (held: Held) => {
    return held.lease.remainingMs();
  });
  const error: ApplicationException = new ConflictException(null, 'LOCK_TIMEOUT', 'm');
  const lease2 = Lease.fromHandle('ml1.61.0123456789abcdef0123456789abcdef.1.1:2:3.5');
  // @ts-expect-error: a key is a string or bytes
  await lock.tryAcquireLock(null, 42, 1000);
  void [taken, result, error.code, error.trace_id, error.withDetails('key', 'job').status, lease2, lock.isOpen()];
  await lock.close();
}
