// Node rows of `just bench`, run by memlock-bench against its memcached:
//   node bench.js HOST:PORT N   -> JSON: try+release cycle (median, p99 µs) and 64 concurrent
//                                  promises' cycles per second, through one MemcachedLock.
import { MemcachedLock } from './src/index.js';

const [address, n = '2000'] = process.argv.slice(2);
const [host, port] = address.split(':');
const lock = new MemcachedLock();
lock.configure({ 'connection.host': host, 'connection.port': port });
await lock.open(null);

const cycle = async (key) => {
  if (!(await lock.tryAcquireLock(null, key, 10_000))) throw new Error(`${key} busy`);
  await lock.releaseLock(null, key);
};
for (let i = 0; i < 200; i++) await cycle('node-warm');
const samples = [];
for (let i = 0; i < Number(n); i++) {
  const started = process.hrtime.bigint();
  await cycle('node-cycle');
  samples.push(Number(process.hrtime.bigint() - started) / 1000);
}
samples.sort((a, b) => a - b);

const tasks = 64;
const seconds = 3;
let cycles = 0;
const until = Date.now() + seconds * 1000;
await Promise.all(
  Array.from({ length: tasks }, async (_, t) => {
    while (Date.now() < until) {
      await cycle(`node-many-${t}`);
      cycles++;
    }
  }),
);
console.log(
  JSON.stringify({
    cycle: { median_us: samples[samples.length >> 1], p99_us: samples[Math.floor(samples.length * 0.99)] },
    concurrent: { tasks, cycles_per_s: cycles / seconds },
  }),
);
await lock.close();
