// The exceptions memlock throws: pip-services' own classes when the application has them
// installed (pip-services4-commons-node, else pip-services3-commons-node), so `instanceof
// ConflictException` and `err.code === 'LOCK_TIMEOUT'` work as with pip-services' lock; without
// pip-services, look-alikes with version 4's fields (category, code, status, trace_id, details,
// cause) and builders. The component reports a WIT lock-error with a kebab-case category and
// code (`no-response`, `lock-timeout`); their pip-services spellings are `NoResponse` and
// `LOCK_TIMEOUT`.
import { optional } from './pip-services.js';

class ApplicationException extends Error {
  constructor(category = null, traceId = null, code = null, message = null) {
    super(message ?? 'Unknown error');
    this.status = 500;
    this.code = code ?? 'UNKNOWN';
    this.category = category ?? 'Unknown';
    this.trace_id = traceId ?? null;
    this.name = this.code;
    this.details = undefined;
    this.cause = undefined;
    this.stack_trace = undefined;
  }
  getCauseString() {
    return this.cause;
  }
  setCauseString(value) {
    this.cause = value;
  }
  getStackTraceString() {
    return this.stack_trace ?? this.stack;
  }
  setStackTraceString(value) {
    this.stack_trace = value;
  }
  withCode(code) {
    this.code = code ?? 'UNKNOWN';
    this.name = this.code;
    return this;
  }
  withCause(cause) {
    if (cause) this.cause = cause.message ?? String(cause);
    return this;
  }
  withStatus(status) {
    this.status = status ?? 500;
    return this;
  }
  withDetails(key, value) {
    this.details = { ...(this.details ?? {}), [key]: value };
    return this;
  }
  withTraceId(traceId) {
    this.trace_id = traceId;
    return this;
  }
  withStackTrace(stackTrace) {
    this.stack_trace = stackTrace;
    return this;
  }
  wrap(cause) {
    this.withCause(cause);
    return cause instanceof ApplicationException ? cause : this;
  }
}

const kind = (name, category, status) => {
  const cls = class extends ApplicationException {
    constructor(traceId = null, code = null, message = null) {
      super(category, traceId, code, message);
      this.status = status;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
};

/** The look-alikes, used when no pip-services version is installed. */
export const fallbackExceptions = Object.freeze({
  ApplicationException,
  UnknownException: kind('UnknownException', 'Unknown', 500),
  InternalException: kind('InternalException', 'Internal', 500),
  ConfigException: kind('ConfigException', 'Misconfiguration', 500),
  ConnectionException: kind('ConnectionException', 'NoResponse', 500),
  InvocationException: kind('InvocationException', 'FailedInvocation', 500),
  BadRequestException: kind('BadRequestException', 'BadRequest', 400),
  UnauthorizedException: kind('UnauthorizedException', 'Unauthorized', 401),
  InvalidStateException: kind('InvalidStateException', 'InvalidState', 500),
  ConflictException: kind('ConflictException', 'Conflict', 409),
  UnsupportedException: kind('UnsupportedException', 'Unsupported', 500),
});

/** pip-services' exception classes (4, else 3), else the look-alikes. */
export function resolveExceptions(require) {
  for (const pkg of ['pip-services4-commons-node', 'pip-services3-commons-node']) {
    const found = optional(pkg, require);
    if (found && Object.keys(fallbackExceptions).every((name) => typeof found[name] === 'function')) {
      return Object.freeze(Object.fromEntries(Object.keys(fallbackExceptions).map((name) => [name, found[name]])));
    }
  }
  return fallbackExceptions;
}

const EXCEPTIONS = resolveExceptions(undefined);
export const {
  ApplicationException: PipApplicationException,
  UnknownException,
  InternalException,
  ConfigException,
  ConnectionException,
  InvocationException,
  BadRequestException,
  UnauthorizedException,
  InvalidStateException,
  ConflictException,
  UnsupportedException,
} = EXCEPTIONS;
export { PipApplicationException as ApplicationException };

const BY_CATEGORY = {
  unknown: UnknownException,
  internal: InternalException,
  misconfiguration: ConfigException,
  'no-response': ConnectionException,
  'failed-invocation': InvocationException,
  'bad-request': BadRequestException,
  unauthorized: UnauthorizedException,
  'invalid-state': InvalidStateException,
  conflict: ConflictException,
  unsupported: UnsupportedException,
};

/** `lock-timeout` -> `LOCK_TIMEOUT`. */
export const codeName = (witCode) => witCode.toUpperCase().replaceAll('-', '_');

/** The exception for a WIT lock-error record. */
export function fromLockError(record) {
  const cls = BY_CATEGORY[record.category] ?? UnknownException;
  return new cls(record.correlationId ?? null, codeName(record.code), record.message);
}

export const invalidInput = (traceId, code, message) => new BadRequestException(traceId, code, message);

export function runtimeFailure(traceId, detail) {
  return new InternalException(traceId, 'RUNTIME', `the memlock component failed: ${detail}`).withCause(new Error(detail));
}
