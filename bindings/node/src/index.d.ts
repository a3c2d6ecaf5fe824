// memlock for Node.js: pip-services' MemcachedLock over the memlock WebAssembly component.

/** A pip-services Context, a trace id, or nothing. */
export type Context =
  | string
  | null
  | undefined
  | { getTraceId(): string | undefined | null }
  | { get(name: string): unknown }
  | { traceId?: unknown; trace_id?: unknown };

/** pip-services ConfigParams, a plain object, a Map or [key, value] pairs. */
export type Config =
  | Record<string, string | number | boolean | null | undefined>
  | Map<string, unknown>
  | Array<[string, unknown]>
  | { getKeys(): string[]; get(key: string): unknown };

export type Key = string | Uint8Array;

export interface ServerProcess {
  pid: bigint;
  startedAt: bigint;
  incarnation: bigint;
}

export declare class Lease {
  constructor(fields: {
    key: Uint8Array;
    ownerToken: bigint;
    cas: bigint;
    serverProcess: ServerProcess;
    ttlMs: number;
    validUntilNs: bigint | null;
    fencingToken: bigint;
  });
  readonly key: Uint8Array;
  readonly ownerToken: bigint;
  readonly cas: bigint;
  readonly serverProcess: ServerProcess;
  readonly ttlMs: number;
  /** `process.hrtime.bigint()` after which the holder must assume the lock lost. */
  readonly validUntilNs: bigint | null;
  /** Grows with every acquisition of the key. */
  readonly fencingToken: bigint;
  readonly keyText: string;
  remainingMs(): number;
  /** `ml1.…`: the CLI's handle format. */
  handle(): string;
  static fromHandle(handle: string, traceId?: string | null): Lease;
}

export interface Held {
  /** The current lease, replaced at every renewal. */
  lease: Lease;
  /** Why the lease was lost, or null. */
  lost: ApplicationException | null;
}

export declare class MemcachedLock {
  configure(config: Config): void;
  setReferences(references: { getOptional(locator: unknown): unknown[] } | null | undefined): void;
  open(context?: Context): Promise<void>;
  close(context?: Context): Promise<void>;
  isOpen(): boolean;
  tryAcquireLock(context: Context, key: Key, ttl: number | bigint): Promise<boolean>;
  acquireLock(context: Context, key: Key, ttl: number | bigint, timeout: number | bigint): Promise<void>;
  releaseLock(context: Context, key: Key): Promise<void>;
  tryAcquire(key: Key, ttl: number | bigint, context?: Context): Promise<Lease | null>;
  acquire(key: Key, ttl: number | bigint, timeout: number | bigint, context?: Context): Promise<Lease>;
  release(lease: Lease | string, context?: Context): Promise<boolean>;
  extend(lease: Lease | string, ttl: number | bigint, context?: Context): Promise<Lease>;
  withLock<T>(
    key: Key,
    options: { ttl?: number | bigint; timeout?: number | bigint; context?: Context },
    work: (held: Held) => Promise<T>,
  ): Promise<T>;
}

/** pip-services' ApplicationException (4's, else 3's, when installed; else a look-alike with
 * 4's fields). With pip-services 3 the trace id is in `correlation_id` instead of `trace_id`. */
export declare class ApplicationException extends Error {
  constructor(category?: string | null, traceId?: string | null, code?: string | null, message?: string | null);
  category: string;
  code: string;
  trace_id: string | null;
  status: number;
  details: Record<string, unknown> | undefined;
  cause: string | undefined;
  stack_trace: string | undefined;
  getCauseString(): string | undefined;
  setCauseString(value: string): void;
  getStackTraceString(): string | undefined;
  setStackTraceString(value: string): void;
  withCode(code: string): this;
  withCause(cause: Error): this;
  withStatus(status: number): this;
  withDetails(key: string, value: unknown): this;
  withTraceId(traceId: string | null): this;
  withStackTrace(stackTrace: string): this;
  wrap(cause: unknown): ApplicationException;
}
/** The pip-services subclasses: `new ConflictException(traceId, code, message)`. */
declare class CategorizedException extends ApplicationException {
  constructor(traceId?: string | null, code?: string | null, message?: string | null);
}
export declare class UnknownException extends CategorizedException {}
export declare class InternalException extends CategorizedException {}
export declare class ConfigException extends CategorizedException {}
export declare class ConnectionException extends CategorizedException {}
export declare class InvocationException extends CategorizedException {}
export declare class BadRequestException extends CategorizedException {}
export declare class UnauthorizedException extends CategorizedException {}
export declare class InvalidStateException extends CategorizedException {}
export declare class ConflictException extends CategorizedException {}
export declare class UnsupportedException extends CategorizedException {}
