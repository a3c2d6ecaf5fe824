// A lock thread: one instance of the memlock component (transpiled by jco, synchronous), with
// its imports. The component's calls are synchronous and its socket import must block until
// the reply comes, so the instance runs here, never on the main thread: each socket call is
// posted to the I/O thread and this thread blocks in Atomics.wait until the reply is in the
// shared mailbox. The main thread's event loop is never blocked.
//
// Messages in: { id, method, args } (method: a component method, in camelCase). Out:
// { id, value }, { id, error: { category, code, message, correlationId } } (the component's
// error), { id, argument } (an argument jco could not lower) or { id, trap }. The interrupt cell
// is written only by the main thread: [0] interrupt (cleared when it lends the thread to a
// call), [1] how long a socket call polls for its reply before sleeping, in µs, [2] set when
// the I/O thread died (every socket call fails from then on).
import { readFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

import { awaitAnswer, DATA_OFFSET, nextCall } from './mailbox.js';

const ERRORS = ['ok', 'refused', 'timed-out', 'closed', 'other', 'tls'];
const decoder = new TextDecoder();
const { ioPort, mailbox, interruptCell, generated } = workerData;
const control = new Int32Array(mailbox, 0, 4);
const data = new Uint8Array(mailbox, DATA_OFFSET);
const interrupt = new Int32Array(interruptCell);
let seq = 0;
/** Answers for resolve-all, sent by the main thread before `open` (discovery lives there). */
let discovered = new Map();
/** Answers for credentials.lookup: store key -> pairs, or an error message (stores live there too). */
let credentialAnswers = new Map();

/** One blocking call to the I/O thread; a failure is thrown as the WIT socket-error case. */
function ioCall(message, timeoutMs) {
  if (Atomics.load(interrupt, 2) !== 0) throw { tag: 'other' }; // the I/O thread is gone
  seq = nextCall(seq);
  message.seq = seq;
  ioPort.postMessage(message);
  // A reply on a fast network comes sooner than a futex sleep and wake-up (tens of µs each on
  // a small VM): while this is the pool's only busy thread, poll for it for up to the budget
  // the main thread left in the cell, then sleep.
  const spinUntil = performance.now() + Atomics.load(interrupt, 1) / 1000;
  // The I/O thread answers within the call's own timeout; the guard only catches a stuck thread.
  const answered = awaitAnswer(control, message.seq, spinUntil, timeoutMs + 5000, () => Atomics.load(interrupt, 2) !== 0);
  if (answered !== 'ok') throw { tag: 'other' };
  if (control[1] === 5) throw { tag: 'tls', val: decoder.decode(data.slice(0, control[2])) };
  if (control[1] !== 0) throw { tag: ERRORS[control[1]] ?? 'other' };
  return control[2];
}

class Connection {
  #id;
  constructor(id) {
    this.#id = id;
  }
  static connect(host, port, timeoutMs, tls) {
    return new Connection(ioCall({ op: 'connect', host, port, timeout: timeoutMs, tls: tls ?? null }, timeoutMs));
  }
  exchange(request, maxBytes, timeoutMs) {
    const n = ioCall({ op: 'exchange', id: this.#id, request, max: maxBytes, timeout: timeoutMs }, timeoutMs);
    return data.slice(0, n);
  }
  send(request, timeoutMs) {
    ioCall({ op: 'send', id: this.#id, request, timeout: timeoutMs }, timeoutMs);
  }
  receive(maxBytes, timeoutMs) {
    const n = ioCall({ op: 'receive', id: this.#id, max: maxBytes, timeout: timeoutMs }, timeoutMs);
    return data.slice(0, n);
  }
  [Symbol.dispose]() {
    ioPort.postMessage({ op: 'drop', id: this.#id });
  }
}

const clock = {
  nowNs: () => process.hrtime.bigint(),
  // Wakes early when the main thread sets the interrupt cell (close, or a cancelled call).
  sleepNs(ns) {
    const deadline = process.hrtime.bigint() + ns;
    for (;;) {
      if (Atomics.load(interrupt, 0) !== 0) return false;
      const left = deadline - process.hrtime.bigint();
      if (left <= 0n) return true;
      Atomics.wait(interrupt, 0, 0, Number(left) / 1e6);
    }
  },
};

const discovery = {
  resolveAll(_correlationId, key) {
    const answer = discovered.get(key);
    if (answer === undefined) return [];
    if (typeof answer === 'string') throw answer; // the WIT error case: discovery failed
    return answer;
  },
};

const credentials = {
  lookup(_correlationId, key) {
    const answer = credentialAnswers.get(key);
    if (answer === undefined) return undefined;
    if (typeof answer === 'string') throw answer; // the WIT error case: the store failed
    return answer;
  },
};

const random = {
  getRandomBytes: (length) => randomFillSync(new Uint8Array(Number(length))),
  getRandomU64: () => randomFillSync(new BigUint64Array(1))[0],
};

const imports = {
  'memlock:lock/socket': { Connection },
  'memlock:lock/clock': clock,
  'memlock:lock/discovery': discovery,
  'memlock:lock/credentials': credentials,
  'memlock:lock/types': {},
  'wasi:random/random': random,
};

const { instantiate } = await import(new URL('memlock.js', generated).href);
const root = instantiate((path) => new WebAssembly.Module(readFileSync(new URL(path, generated))), imports);
const lock = new root.lock.MemcachedLock();

parentPort.on('message', ({ id, method, args }) => {
  try {
    let value;
    if (method === 'discovered') {
      discovered = new Map(args[0]);
      credentialAnswers = new Map(args[1] ?? []);
    } else {
      value = lock[method](...args);
    }
    parentPort.postMessage({ id, value });
  } catch (e) {
    const payload = e?.payload;
    if (payload && typeof payload === 'object' && 'code' in payload) {
      parentPort.postMessage({ id, error: payload });
    } else if (e instanceof WebAssembly.RuntimeError) {
      // A trap: this instance is unusable from now on; the main thread replaces the thread.
      parentPort.postMessage({ id, trap: String(e?.stack ?? e) });
    } else {
      // jco refused to lower an argument (TypeError, RangeError): nothing reached wasm.
      parentPort.postMessage({ id, argument: String(e?.message ?? e) });
    }
  }
});
