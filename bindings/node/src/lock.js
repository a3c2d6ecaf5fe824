// MemcachedLock: pip-services' class for Node (configure, setReferences, open, close, isOpen,
// tryAcquireLock, acquireLock, releaseLock — promises, as in pip-services Node) over the memlock
// component, plus owner-checked leases (tryAcquire, acquire, release, extend, withLock).
//
// Setup follows the seed: configure and setReferences take effect at the next open, for every
// lock thread alike. Discovery (`connection.discovery_key`) is resolved here, on the main
// thread, when the lock opens — pip-services' discovery services are asynchronous — and each
// lock thread's `discovery` import answers from that result.
import * as errors from './errors.js';
import { Lease, fromWit, toWit } from './lease.js';
import { locators } from './pip-services.js';
import { Pool } from './pool.js';
import { validator } from './validator.js';

const GENERATED = new URL('../generated/', import.meta.url);
/** The main thread's instance that checks configurations (top-level await: made at import). */
const CHECKER = await validator(GENERATED);
const S64_MIN = -(1n << 63n);
const S64_MAX = (1n << 63n) - 1n;

/** A pip-services Context, a trace id string, or null/undefined -> the trace id (or undefined). */
export function traceId(context) {
  if (context == null) return undefined;
  if (typeof context === 'string') return context;
  let id;
  if (typeof context.getTraceId === 'function') id = context.getTraceId();
  else if (typeof context.get === 'function') id = context.get('trace_id') ?? context.get('traceId');
  else id = context.traceId ?? context.trace_id;
  return id == null ? undefined : String(id);
}

function keyBytes(key, tid) {
  if (typeof key === 'string') return new Uint8Array(Buffer.from(key, 'utf8'));
  if (key instanceof Uint8Array) return new Uint8Array(key);
  throw errors.invalidInput(tid ?? null, 'INVALID_KEY', `a key is a string or a Uint8Array, got ${typeof key}`);
}
const keyName = (bytes) => Buffer.from(bytes).toString('hex');

function milliseconds(value, name, code, tid) {
  const integer = typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
  if (!integer) throw errors.invalidInput(tid ?? null, code, `${name} must be an integer of milliseconds, got ${value}`);
  const n = BigInt(value);
  if (n < S64_MIN || n > S64_MAX) throw errors.invalidInput(tid ?? null, code, `${name} ${n} ms is out of range`);
  return n;
}

/** ConfigParams (pip-services), a plain object, a Map, or [key, value] pairs -> pairs of strings. */
export function configPairs(config) {
  if (config == null) return [];
  let entries;
  if (Array.isArray(config)) entries = config;
  else if (config instanceof Map) entries = [...config.entries()];
  else if (typeof config.getKeys === 'function') entries = config.getKeys().map((k) => [k, config.get(k)]);
  else entries = Object.entries(config);
  return entries.filter(([, v]) => v != null).map(([k, v]) => [String(k), typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v)]);
}

function storeKeys(pairs) {
  return [...new Set(pairs.filter(([k]) => /(^|\.)credential\.store_key$/i.test(k)).map(([, v]) => v))];
}

/** A credential store's credential for `key`: pip-services 4 returns a promise, 3 calls back. */
function lookup(store, context, key) {
  if (store.lookup.length < 3) return store.lookup(context, key);
  return new Promise((resolve, reject) => {
    store.lookup(traceId(context) ?? null, key, (err, credential) => (err ? reject(err) : resolve(credential)));
  });
}

function discoveryKeys(pairs) {
  return [...new Set(pairs.filter(([k]) => /^connections?\.(.*\.)?discovery_key$/i.test(k)).map(([, v]) => v))];
}

/** A discovery service's connections for `key`: pip-services 4 returns a promise, 3 calls back. */
function resolveAll(discovery, context, key) {
  if (discovery.resolveAll.length < 3) return discovery.resolveAll(context, key);
  return new Promise((resolve, reject) => {
    discovery.resolveAll(traceId(context) ?? null, key, (err, connections) => (err ? reject(err) : resolve(connections)));
  });
}

function rejection(reason, tid) {
  if (reason?.error) return errors.fromLockError(reason.error);
  if (reason?.argument) return errors.invalidInput(tid ?? null, 'INVALID_ARGUMENT', reason.argument);
  if (reason?.trap) return errors.runtimeFailure(tid ?? null, reason.trap);
  return reason;
}

export class MemcachedLock {
  #config = [];
  #discoveries = [];
  #credentialStores = [];
  #opened = null; // { config, descriptors, discovered } since the last open
  #generation = 0;
  #pool;

  constructor() {
    this.#pool = new Pool(GENERATED, (thread) => this.#sync(thread));
  }

  // -- pip-services: IConfigurable, IReferenceable, IOpenable -----------------------------

  /** pip-services ConfigParams (or a plain object) with the seed's keys; takes effect at open.
   * A bad value throws ConfigException INVALID_CONFIG naming the key, at once. */
  configure(config) {
    const pairs = configPairs(config);
    try {
      CHECKER.configure(pairs);
    } catch (e) {
      throw e?.payload ? errors.fromLockError(e.payload) : errors.runtimeFailure(null, String(e));
    }
    this.#config = pairs;
  }

  /** pip-services IReferences: `*:discovery:*:*:1.0` services resolve connection.discovery_key
   * (at the next open). They are looked up with pip-services' own Descriptor (4 and 3, those
   * installed) and a look-alike for other IReferences implementations. */
  setReferences(references) {
    const find = (type) => {
      const found = new Set();
      if (references != null && typeof references.getOptional === 'function') {
        for (const locator of locators('*', type, '*', '*', '1.0')) {
          for (const service of references.getOptional(locator) ?? []) found.add(service);
        }
      }
      return [...found];
    };
    this.#discoveries = find('discovery');
    this.#credentialStores = find('credential-store');
  }

  isOpen() {
    return this.#opened !== null;
  }

  async open(context) {
    const tid = traceId(context);
    const discovered = [];
    for (const key of discoveryKeys(this.#config)) {
      try {
        const connections = [];
        for (const discovery of this.#discoveries) {
          connections.push(...((await resolveAll(discovery, context ?? null, key)) ?? []));
        }
        discovered.push([key, connections.map((c) => configPairs(c))]);
      } catch (e) {
        discovered.push([key, String(e?.message ?? e)]);
      }
    }
    const credentials = [];
    for (const key of storeKeys(this.#config)) {
      try {
        let found;
        for (const store of this.#credentialStores) {
          found = await lookup(store, context ?? null, key);
          if (found != null) break;
        }
        credentials.push([key, found == null ? undefined : configPairs(found)]);
      } catch (e) {
        credentials.push([key, String(e?.message ?? e)]);
      }
    }
    if (this.#config.some(([k, v]) => /(^|\.)credential\.ssl_insecure$/i.test(k) && /^(true|1)$/i.test(v))) {
      process.emitWarning(
        'TLS certificate verification is OFF (credential.ssl_insecure=true): anyone on the path can impersonate the memcached servers',
        { code: 'MEMLOCK_INSECURE_TLS' },
      );
    }
    const descriptors = [];
    if (this.#discoveries.length) descriptors.push('*:discovery:*:*:1.0');
    if (this.#credentialStores.length) descriptors.push('*:credential-store:*:*:1.0');
    const previous = this.#opened;
    this.#opened = { config: this.#config, descriptors, discovered, credentials };
    this.#generation++;
    try {
      await this.#pool.with({}, async () => {});
    } catch (e) {
      this.#opened = previous;
      this.#generation++;
      throw e;
    }
  }

  /** Closes every connection; a blocking acquire in flight ends with InvalidStateException CANCELLED. */
  async close(context) {
    this.#opened = null;
    this.#generation++;
    this.#pool.interruptAll();
    this.#pool.trim();
    // Threads keeping seed leases stay (releaseLock after a reopen still finds them), closed now.
    await this.#pool.syncIdle((thread) => this.#sync(thread));
    void context;
  }

  // -- pip-services: ILock ----------------------------------------------------------------

  /** One attempt: true when this lock now holds `key` for `ttl` ms. */
  async tryAcquireLock(context, key, ttl) {
    const tid = traceId(context);
    const bytes = keyBytes(key, tid);
    const ms = milliseconds(ttl, 'ttl', 'INVALID_TTL', tid);
    return this.#pool.with({}, async (thread) => {
      const taken = await this.#call(thread, tid, 'tryAcquireLock', tid, bytes, ms);
      if (taken) this.#pool.remember(keyName(bytes), thread);
      return taken;
    });
  }

  /** Waits up to `timeout` ms; then ConflictException LOCK_TIMEOUT (the seed's message). */
  async acquireLock(context, key, ttl, timeout) {
    const tid = traceId(context);
    const bytes = keyBytes(key, tid);
    const ms = milliseconds(ttl, 'ttl', 'INVALID_TTL', tid);
    const wait = milliseconds(timeout, 'timeout', 'INVALID_ARGUMENT', tid);
    await this.#pool.with({ blocking: true }, async (thread) => {
      try {
        await this.#call(thread, tid, 'acquireLock', tid, bytes, ms, wait);
      } catch (e) {
        if (e.code === 'LOCK_TIMEOUT') e.withDetails('key', Buffer.from(bytes).toString('utf8'));
        throw e;
      }
      this.#pool.remember(keyName(bytes), thread);
    });
  }

  /** Releases this lock's lease on `key` (owner-checked); a no-op if it holds none. */
  async releaseLock(context, key) {
    const tid = traceId(context);
    const bytes = keyBytes(key, tid);
    const name = keyName(bytes);
    await this.#pool.with({ key: name }, async (thread) => {
      await this.#call(thread, tid, 'releaseLock', tid, bytes);
      this.#pool.forget(name, thread);
    });
  }

  // -- leases -----------------------------------------------------------------------------

  /** One attempt: the Lease, or null when someone else holds `key`. */
  async tryAcquire(key, ttl, context) {
    const tid = traceId(context);
    const ms = milliseconds(ttl, 'ttl', 'INVALID_TTL', tid);
    const record = await this.#pool.with({}, (t) => this.#call(t, tid, 'tryAcquire', tid, keyBytes(key, tid), ms));
    return record === undefined ? null : fromWit(record);
  }

  /** Waits up to `timeout` ms for `key`: the Lease, or ConflictException LOCK_TIMEOUT. */
  async acquire(key, ttl, timeout, context) {
    const tid = traceId(context);
    const ms = milliseconds(ttl, 'ttl', 'INVALID_TTL', tid);
    const wait = milliseconds(timeout, 'timeout', 'INVALID_ARGUMENT', tid);
    const record = await this.#pool.with({ blocking: true }, (t) => this.#call(t, tid, 'acquire', tid, keyBytes(key, tid), ms, wait));
    return fromWit(record);
  }

  /** Releases a Lease or handle (from any process): true when this call deleted it, false when
   * it was gone or someone else's (untouched). */
  async release(lease, context) {
    const tid = traceId(context);
    const wit = toWit(typeof lease === 'string' ? Lease.fromHandle(lease, tid) : lease, tid);
    return this.#pool.with({}, (t) => this.#call(t, tid, 'release', tid, wit));
  }

  /** Prolongs a held lease to `ttl` ms from now (compare-and-set); LOCK_LOST if it is gone. */
  async extend(lease, ttl, context) {
    const tid = traceId(context);
    const wit = toWit(typeof lease === 'string' ? Lease.fromHandle(lease, tid) : lease, tid);
    const ms = milliseconds(ttl, 'ttl', 'INVALID_TTL', tid);
    return fromWit(await this.#pool.with({}, (t) => this.#call(t, tid, 'extend', tid, wit, ms)));
  }

  /**
   * Acquires `key`, runs `work(held)` while renewing the lease every third of its ttl, and
   * releases it when `work` settles. `held.lease` is the current lease, `held.lost` the error if
   * it was lost (deleted, taken over, or not renewed in time); a lost lease rejects with
   * ConflictException LOCK_LOST once `work` is done, unless `work` itself failed.
   */
  async withLock(key, { ttl = 10_000, timeout = 10_000, context } = {}, work) {
    const held = { lease: await this.acquire(key, ttl, timeout, context), lost: null };
    const period = Math.max(10, Number(ttl) / 3);
    let stop = null;
    const stopped = new Promise((resolve) => {
      stop = resolve;
    });
    const pause = (ms) => {
      let timer;
      return Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), stopped]).finally(() => clearTimeout(timer));
    };
    let running = true;
    const renewal = (async () => {
      let wait = period;
      while (running) {
        await pause(wait);
        if (!running) return;
        if (held.lease.remainingMs() <= 0) {
          held.lost = new errors.ConflictException(null, 'LOCK_LOST', `lease on ${held.lease.keyText} expired before it was renewed`);
          return;
        }
        try {
          held.lease = await this.extend(held.lease, ttl, context);
          wait = period;
        } catch (e) {
          if (e.code === 'LOCK_LOST') {
            held.lost = e;
            return;
          }
          // Unavailable or stalled: retry sooner while the lease is still valid.
          wait = Math.max(10, Math.min(period, held.lease.remainingMs() / 4));
        }
      }
    })();
    let failed = false;
    try {
      return await work(held);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      running = false;
      stop();
      await renewal;
      if (held.lost === null || held.lost.code !== 'LOCK_LOST') {
        // Still ours, or not renewed in time: an owner-checked release is safe either way.
        await this.release(held.lease, context).catch((e) => {
          if (!failed && held.lost === null) throw e;
        });
      }
      if (held.lost !== null && !failed) throw held.lost; // eslint-disable-line no-unsafe-finally
    }
  }

  // -- threads ----------------------------------------------------------------------------

  async #call(thread, tid, method, ...args) {
    try {
      return await thread.call(method, ...args);
    } catch (reason) {
      throw rejection(reason, tid);
    }
  }

  /** Brings a lock thread to the setup in force: closed, or opened as at the last open. */
  async #sync(thread) {
    // Again until no open or close happened meanwhile: a call never runs on an old setup.
    while (thread.seen !== this.#generation) {
      const generation = this.#generation;
      const opened = this.#opened;
      try {
        if (await thread.call('isOpen')) await thread.call('close', undefined);
        if (opened !== null) {
          await thread.call('discovered', opened.discovered, opened.credentials);
          await thread.call('configure', opened.config);
          await thread.call('setReferences', opened.descriptors);
          await thread.call('open', undefined);
        }
      } catch (reason) {
        throw rejection(reason);
      }
      thread.seen = generation;
    }
  }
}
