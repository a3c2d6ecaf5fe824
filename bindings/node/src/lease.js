// Leases: a held lock, its fencing token, and the portable handle — the CLI's format byte for
// byte, so a lease taken in Node can be released by `memlock release` and the other way round:
//   ml1.<key hex>.<owner token: 32 hex>.<cas>.<server process pid:start:incarnation>.<fencing token>
// A handle lets its bearer release or extend the lock: treat it like the lock.
import { invalidInput } from './errors.js';

const U64 = (1n << 64n) - 1n;
const HEX = /^[0-9a-fA-F]+$/;
const DECIMAL = /^[0-9]+$/;

export class Lease {
  constructor({ key, ownerToken, cas, serverProcess, ttlMs, validUntilNs, fencingToken }) {
    /** The key's bytes. */
    this.key = key;
    /** 128 random bits proving ownership (BigInt). */
    this.ownerToken = ownerToken;
    /** The CAS of the item this lease created (BigInt). */
    this.cas = cas;
    /** { pid, startedAt, incarnation } (BigInts), all 0n when unknown. */
    this.serverProcess = serverProcess;
    /** The ttl as requested, ms (0 for a lease read from a handle). */
    this.ttlMs = ttlMs;
    /** `process.hrtime.bigint()` after which the holder must assume the lock lost; null if unknown. */
    this.validUntilNs = validUntilNs;
    /** Grows with every acquisition of the key: serverStart * 2**64 + sequence (BigInt). */
    this.fencingToken = fencingToken;
    Object.freeze(this);
  }

  get keyText() {
    return Buffer.from(this.key).toString('utf8');
  }

  /** Milliseconds of validity left (0 when unknown or past). */
  remainingMs() {
    if (this.validUntilNs == null) return 0;
    const left = this.validUntilNs - process.hrtime.bigint();
    return left > 0n ? Number(left / 1_000_000n) : 0;
  }

  handle() {
    const p = this.serverProcess;
    return `ml1.${Buffer.from(this.key).toString('hex')}.${this.ownerToken.toString(16).padStart(32, '0')}.${this.cas}.${p.pid}:${p.startedAt}:${p.incarnation}.${this.fencingToken}`;
  }

  toString() {
    return this.handle();
  }

  /** Parses a handle; a malformed one is a BadRequestException with code INVALID_LEASE. */
  static fromHandle(handle, traceId = null) {
    const bad = (why) => invalidInput(traceId, 'INVALID_LEASE', `invalid lease handle: ${why}`);
    const parts = String(handle).trim().split('.');
    if (parts.length !== 6) throw bad('expected ml1.<key>.<token>.<cas>.<server process>.<fencing token>');
    const [prefix, key, token, cas, process_, fence] = parts;
    if (prefix !== 'ml1') throw bad('it does not start with ml1.');
    if (!key || key.length % 2 || !HEX.test(key)) throw bad('the key is not hex');
    if (token.length !== 32 || !HEX.test(token)) throw bad('the owner token is not 32 hex digits');
    if (!DECIMAL.test(cas) || BigInt(cas) > U64) throw bad('the cas is not a number');
    const numbers = process_.split(':');
    if (![2, 3].includes(numbers.length) || !numbers.every((n) => DECIMAL.test(n) && BigInt(n) <= U64)) {
      throw bad('the server process is not pid:start:incarnation');
    }
    // A handle from before incarnations (pid:start) reads as an unknown server process.
    const [pid, startedAt, incarnation] = numbers.length === 3 ? numbers.map(BigInt) : [0n, 0n, 0n];
    if (!DECIMAL.test(fence) || BigInt(fence) >= 1n << 128n) throw bad('the fencing token is not a number');
    return new Lease({
      key: new Uint8Array(Buffer.from(key, 'hex')),
      ownerToken: BigInt(`0x${token}`),
      cas: BigInt(cas),
      serverProcess: { pid, startedAt, incarnation },
      ttlMs: 0,
      validUntilNs: null,
      fencingToken: BigInt(fence),
    });
  }
}

/** A WIT lease record (as jco gives it) -> Lease. The component's clock is process.hrtime. */
export function fromWit(r) {
  return new Lease({
    key: new Uint8Array(r.key),
    ownerToken: (r.ownerToken.high << 64n) | r.ownerToken.low,
    cas: r.cas,
    serverProcess: { pid: r.serverProcess.pid, startedAt: r.serverProcess.startedAt, incarnation: r.serverProcess.incarnation },
    ttlMs: Number(r.ttlMs),
    validUntilNs: r.validUntilNs,
    fencingToken: (r.fencingToken.serverStart << 64n) | r.fencingToken.sequence,
  });
}

/** Lease -> the WIT lease record; every number is range-checked (INVALID_LEASE). */
export function toWit(lease, traceId = null) {
  const p = lease.serverProcess ?? {};
  const check = (name, value, bits) => {
    if (typeof value !== 'bigint' || value < 0n || value >= 1n << BigInt(bits)) {
      throw invalidInput(traceId, 'INVALID_LEASE', `invalid lease: ${name} ${value} is out of range`);
    }
  };
  check('owner token', lease.ownerToken, 128);
  check('cas', lease.cas, 64);
  check('server process pid', p.pid, 64);
  check('server process start', p.startedAt, 64);
  check('server process incarnation', p.incarnation, 64);
  check('fencing token', lease.fencingToken, 128);
  check('ttl', BigInt(Number.isInteger(lease.ttlMs) ? lease.ttlMs : -1), 64);
  if (lease.validUntilNs != null) check('valid-until', lease.validUntilNs, 64);
  if (!(lease.key instanceof Uint8Array)) throw invalidInput(traceId, 'INVALID_LEASE', 'invalid lease: the key is not bytes');
  return {
    key: lease.key,
    ownerToken: { high: lease.ownerToken >> 64n, low: lease.ownerToken & U64 },
    cas: lease.cas,
    serverProcess: { pid: p.pid, startedAt: p.startedAt, incarnation: p.incarnation },
    ttlMs: BigInt(lease.ttlMs ?? 0),
    validUntilNs: lease.validUntilNs ?? 0n,
    fencingToken: { serverStart: lease.fencingToken >> 64n, sequence: lease.fencingToken & U64 },
  };
}
