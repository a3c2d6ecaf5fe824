// Lock threads lent to one call at a time, and the one I/O thread they share.
//
// A component instance runs one call at a time and blocks while it waits, so a MemcachedLock
// keeps a pool of lock threads (one instance each): every call borrows an idle thread or starts
// a new one (up to MAX_THREADS, then it queues), so many promises can be in flight at once. The seed API's leases stay in the instance that took them, so
// `releaseLock` goes back to that thread (waiting for it if busy); a blocking call is never lent
// a thread that holds seed leases, so such a thread is only ever busy for one bounded round trip.
// Idle threads are unref'd: a process that forgets `close()` still exits.
import { MessageChannel, Worker } from 'node:worker_threads';

import { abandon, DATA_OFFSET } from './mailbox.js';

const MAILBOX_BYTES = DATA_OFFSET + 1024 * 1024 + 4096;
/** Most lock threads one lock starts (`MEMLOCK_THREADS`, default 16): more concurrent calls queue
 * for a thread. Starting a thread costs tens of milliseconds (a worker, the module compiled,
 * an instance), so threads are kept until the lock closes rather than stopped when idle. */
export const MAX_THREADS = Math.max(1, Number(process.env.MEMLOCK_THREADS) || 16);
/** How long a socket call of the only busy lock thread polls for its reply before it sleeps
 * (`MEMLOCK_SPIN_US`, default 100; 0 turns polling off). Polling saves a thread's sleep and
 * wake-up on each round trip, but with several threads busy it takes the cores the I/O
 * thread and the server need, so it is only allowed while one call is in flight. */
export const SPIN_US = Math.min(10_000, Math.max(0, Math.trunc(Number(process.env.MEMLOCK_SPIN_US ?? 100)) || 0));

let ioThread = null;
/** Every lock thread alive, so that the I/O thread's end can reach those it served. */
const lockThreads = new Set();
function io() {
  if (ioThread === null) {
    const thread = new Worker(new URL('./io-worker.js', import.meta.url));
    thread.unref();
    // An I/O thread that dies takes every connection with it: the lock threads it served fail
    // their socket call at once (not at the call's timeout) and are replaced; the next lock
    // thread starts a new I/O thread.
    thread.on('error', () => {}); // its end is handled on 'exit'
    thread.on('exit', () => {
      if (ioThread === thread) ioThread = null;
      for (const lockThread of lockThreads) if (lockThread.io === thread) lockThread.ioLost();
    });
    ioThread = thread;
  }
  return ioThread;
}

class LockThread {
  constructor(generated) {
    const { port1, port2 } = new MessageChannel();
    const mailbox = new SharedArrayBuffer(MAILBOX_BYTES);
    this.interruptCell = new SharedArrayBuffer(12); // [0] interrupt, [1] poll budget in µs, [2] I/O lost
    this.interrupt = new Int32Array(this.interruptCell);
    this.mailbox = new Int32Array(mailbox, 0, 4);
    this.io = io();
    this.io.postMessage({ type: 'attach', port: port2, mailbox }, [port2]);
    lockThreads.add(this);
    this.worker = new Worker(new URL('./lock-worker.js', import.meta.url), {
      workerData: { ioPort: port1, mailbox, interruptCell: this.interruptCell, generated: generated.href },
      transferList: [port1],
    });
    this.worker.unref();
    this.pending = new Map();
    this.nextId = 1;
    this.held = new Set();
    this.seen = -1;
    this.poisoned = false;
    this.retired = false;
    /** Lent to a blocking call (acquire, acquireLock). */
    this.blocking = false;
    /** The lock closed while this thread was busy: close it when the call returns. */
    this.stale = false;
    this.worker.on('message', ({ id, value, error, argument, trap }) => {
      const call = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
      if (!call) return;
      if (trap !== undefined) {
        this.poisoned = true;
        call.reject({ trap });
      } else if (error !== undefined) {
        call.reject({ error });
      } else if (argument !== undefined) {
        call.reject({ argument });
      } else {
        call.resolve(value);
      }
    });
    const fail = (why) => {
      this.poisoned = true;
      for (const call of this.pending.values()) call.reject({ trap: why });
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(String(e?.stack ?? e)));
    this.worker.on('exit', (code) => {
      lockThreads.delete(this);
      fail(`the lock thread exited (${code})`);
    });
  }

  /** The I/O thread died: the socket call in flight and every later one fail at once, and the
   * thread is replaced when its call returns. */
  ioLost() {
    this.poisoned = true;
    Atomics.store(this.interrupt, 2, 1);
    // Also wakes a socket call waiting for its answer (no writer is left).
    abandon(this.mailbox);
  }

  /** One component call; rejects with { error } (a WIT lock-error), { argument } or { trap }. */
  call(method, ...args) {
    if (this.poisoned) return Promise.reject({ trap: 'the instance trapped earlier' });
    const id = this.nextId++;
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  /** Closes the instance (its connections; what it left behind is cleaned up) and ends the
   * thread; a poisoned one is ended at once. The I/O thread also drops every connection of a
   * thread whose port closes. */
  stop() {
    if (this.retired) return;
    this.retired = true;
    const end = () => this.worker.terminate();
    if (this.poisoned) return void end();
    const closed = this.call('close', undefined).catch(() => {});
    const limit = new Promise((resolve) => setTimeout(resolve, 5000).unref());
    Promise.race([closed, limit]).then(end);
  }
}

export class Pool {
  /** @param sync async (thread) => void: brings a thread to the lock's setup. */
  constructor(generated, sync) {
    this.generated = generated;
    this.sync = sync;
    this.idle = [];
    this.busy = new Set();
    this.holders = new Map(); // key (hex) -> LockThread keeping its seed lease
    this.waiters = [];
  }

  /** Runs `use(thread)` on a thread lent for one call. */
  async with({ key = null, blocking = false } = {}, use) {
    const thread = await this.#take(key, blocking);
    try {
      await this.sync(thread);
      return await use(thread);
    } finally {
      this.#giveBack(thread);
    }
  }

  async #take(key, blocking) {
    for (;;) {
      const wanted = key === null ? undefined : this.holders.get(key);
      if (wanted && !wanted.retired && !wanted.poisoned) {
        const index = this.idle.indexOf(wanted);
        if (index < 0) {
          await new Promise((resolve) => this.waiters.push(resolve));
          continue;
        }
        this.idle.splice(index, 1);
        return this.#lent(wanted, blocking);
      }
      for (let i = this.idle.length - 1; i >= 0; i--) {
        if (!(blocking && this.idle[i].held.size)) return this.#lent(this.idle.splice(i, 1)[0], blocking);
      }
      const threads = this.idle.length + this.busy.size;
      // Past the limit, a thread is still started when waiting could deadlock or starve: a
      // blocking call when every thread keeps seed leases (a caller holding many keys), and a
      // short call when every busy thread is in a blocking wait (a holder's extend or release
      // must never queue behind waiters for the key it holds).
      const allHold = threads > 0 && [...this.idle, ...this.busy].every((t) => t.held.size > 0);
      const allWaiting = !blocking && [...this.busy].every((t) => t.blocking);
      if (threads < MAX_THREADS || (blocking && allHold) || allWaiting) {
        return this.#lent(new LockThread(this.generated), blocking);
      }
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  #lent(thread, blocking) {
    // Only here is the interrupt cell cleared: a close() during the call's setup still counts.
    Atomics.store(thread.interrupt, 0, 0);
    thread.blocking = blocking;
    this.busy.add(thread);
    this.#budgetPolling();
    return thread;
  }

  /** Lets a socket call poll for its reply only while its thread is the only one busy. */
  #budgetPolling() {
    const budget = this.busy.size === 1 ? SPIN_US : 0;
    for (const thread of this.busy) Atomics.store(thread.interrupt, 1, budget);
  }

  #giveBack(thread) {
    if (thread.stale && !thread.poisoned && !thread.retired) {
      // The lock closed during this call: close this thread too before it idles.
      thread.stale = false;
      this.sync(thread)
        .catch(() => {})
        .finally(() => this.#giveBack(thread));
      return;
    }
    this.busy.delete(thread);
    this.#budgetPolling();
    thread.blocking = false;
    if (thread.poisoned || thread.retired) {
      this.#forgetAll(thread);
      thread.stop();
    } else {
      this.idle.push(thread);
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  remember(key, thread) {
    const previous = this.holders.get(key);
    if (previous && previous !== thread) previous.held.delete(key);
    this.holders.set(key, thread);
    thread.held.add(key);
  }

  forget(key, thread) {
    if (this.holders.get(key) === thread) this.holders.delete(key);
    thread.held.delete(key);
  }

  #forgetAll(thread) {
    for (const key of thread.held) if (this.holders.get(key) === thread) this.holders.delete(key);
    thread.held.clear();
  }

  /** Interrupts every blocking wait in flight (they end with CANCELLED). */
  interruptAll() {
    for (const thread of this.busy) {
      thread.stale = true;
      Atomics.store(thread.interrupt, 0, 1);
      Atomics.notify(thread.interrupt, 0);
    }
  }

  /** Runs `sync` on every idle thread, each taken out of the pool while it runs. */
  async syncIdle(sync) {
    const taken = this.idle.splice(0);
    for (const thread of taken) this.busy.add(thread);
    this.#budgetPolling();
    await Promise.all(taken.map((thread) => sync(thread).catch(() => {})));
    for (const thread of taken) this.#giveBack(thread);
  }

  /** Stops every idle thread without seed leases (they would only be closed). */
  trim() {
    this.idle = this.idle.filter((thread) => {
      if (thread.held.size) return true;
      thread.stop();
      return false;
    });
  }
}

/** The I/O thread (for the tests that stop it). */
export const ioThreadForTests = () => io();
