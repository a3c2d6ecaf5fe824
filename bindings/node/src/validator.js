// Checks a configuration on the main thread, synchronously, so that `configure` throws at once
// as pip-services' does. The component's configure only parses (no I/O), so one instance with
// inert imports suffices; it is made on first use and never opened.
import { readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';

let instance = null;

function inert() {
  const refuse = () => {
    throw { tag: 'other' };
  };
  return {
    'memlock:lock/socket': { Connection: class { static connect() { refuse(); } } },
    'memlock:lock/clock': { nowNs: () => process.hrtime.bigint(), sleepNs: () => false },
    'memlock:lock/discovery': { resolveAll: () => [] },
    'memlock:lock/credentials': { lookup: () => undefined },
    'memlock:lock/types': {},
    'wasi:random/random': {
      getRandomBytes: (length) => randomFillSync(new Uint8Array(Number(length))),
      getRandomU64: () => randomFillSync(new BigUint64Array(1))[0],
    },
  };
}

/** Throws the component's lock-error (as jco gives it: `payload`) for a bad configuration. */
export async function validator(generated) {
  if (instance === null) {
    const { instantiate } = await import(new URL('memlock.js', generated).href);
    const root = instantiate((path) => new WebAssembly.Module(readFileSync(new URL(path, generated))), inert());
    instance = new root.lock.MemcachedLock();
  }
  return instance;
}
