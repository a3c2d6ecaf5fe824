// Errors shaped like pip-services' ApplicationException: category, code, message, traceId,
// status, details, cause — so `err.code === 'LOCK_TIMEOUT'` and `instanceof ConflictException`
// keep working for a pip-services caller. The component reports a WIT lock-error with a
// kebab-case category and code (`no-response`, `lock-timeout`); their pip-services spellings are
// `NoResponse` and `LOCK_TIMEOUT`.

export class ApplicationException extends Error {
  constructor(category = 'Unknown', traceId = null, code = 'UNKNOWN', message = 'Unknown error') {
    super(message);
    this.name = code;
    this.category = category;
    this.traceId = traceId ?? null;
    this.code = code;
    this.status = 500;
    this.details = null;
    this.cause = null;
  }
  withDetails(key, value) {
    this.details = { ...(this.details ?? {}), [key]: value };
    return this;
  }
  withCause(cause) {
    this.cause = cause == null ? null : String(cause?.message ?? cause);
    return this;
  }
  toJSON() {
    const { category, code, status, details, message, cause, traceId } = this;
    return { category, code, status, details, message, cause, trace_id: traceId };
  }
}

const kind = (name, category, status) => {
  const cls = class extends ApplicationException {
    constructor(traceId = null, code = null, message = null) {
      super(category, traceId, code ?? 'UNKNOWN', message ?? 'Unknown error');
      this.status = status;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
};

export const UnknownException = kind('UnknownException', 'Unknown', 500);
export const InternalException = kind('InternalException', 'Internal', 500);
export const ConfigException = kind('ConfigException', 'Misconfiguration', 500);
export const ConnectionException = kind('ConnectionException', 'NoResponse', 500);
export const InvocationException = kind('InvocationException', 'FailedInvocation', 500);
export const BadRequestException = kind('BadRequestException', 'BadRequest', 400);
export const InvalidStateException = kind('InvalidStateException', 'InvalidState', 500);
export const ConflictException = kind('ConflictException', 'Conflict', 409);
export const UnsupportedException = kind('UnsupportedException', 'Unsupported', 500);

const BY_CATEGORY = {
  unknown: UnknownException,
  internal: InternalException,
  misconfiguration: ConfigException,
  'no-response': ConnectionException,
  'failed-invocation': InvocationException,
  'bad-request': BadRequestException,
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
  return new InternalException(traceId, 'RUNTIME', `the memlock component failed: ${detail}`).withCause(detail);
}
