// The mailbox between a lock thread and the I/O thread: one SharedArrayBuffer per lock thread.
// Int32 [0] the number of the last call answered (written last, with Atomics.store), or
// NO_ANSWER; [1] status; [2] byte count or connection id. Bytes from DATA_OFFSET carry the data
// (the bytes read, or why a TLS handshake failed).
//
// The lock thread numbers its calls (`nextCall`), posts each, and blocks in Atomics.wait until
// [0] holds that call's number. Only the I/O thread writes [0] — and the main thread, once, with
// NO_ANSWER when the I/O thread has died — so the waiter cannot miss its answer: a wake-up that
// finds another number (an earlier answer's late notify) waits again on the number it found,
// and Atomics.wait returns at once if [0] changed in between. An earlier version had the waiter
// reset a done flag after such a wake-up; an answer written in that instant was lost, and the
// call failed with `network error` after its guard (test/mailbox.test.js).
//
// Left as it is: an answer to a call the lock thread gave up on (its guard passed: the I/O
// thread stalled for more than 5 s) can still arrive during the next call and overwrite [1],
// [2] and the data the next call's answer wrote just before.

export const DATA_OFFSET = 16;
/** Written into [0] when no answer can come any more (the I/O thread died). */
export const NO_ANSWER = -1;

/** The largest call number the mailbox's 32 bits hold. */
const LAST_CALL = 0x7fff_ffff;

/** The number of the call after call `seq`: 1, 2, 3, ..., LAST_CALL, then 1 again. Never 0
 * (the mailbox's first value) nor NO_ANSWER: a number that did not fit would be stored as
 * another one, and every later call would wait for an answer it cannot recognise. */
export function nextCall(seq) {
  return seq >= LAST_CALL ? 1 : seq + 1;
}

/** The I/O thread's side: the answer to call `seq`, after its data. */
export function answer(control, seq, status, length) {
  control[1] = status;
  control[2] = length;
  Atomics.store(control, 0, seq);
  Atomics.notify(control, 0);
}

/** Wakes a lock thread that waits for an answer which will not come (see `lost` below). */
export function abandon(control) {
  Atomics.store(control, 0, NO_ANSWER);
  Atomics.notify(control, 0);
}

/**
 * The lock thread's side: waits for the answer to call `seq`. Polls until `spinUntil`
 * (performance.now() milliseconds), then sleeps. `'ok'` when it came, `'lost'` when `lost()`
 * says no answer can come, `'timed-out'` after `guardMs` without one.
 */
export function awaitAnswer(control, seq, spinUntil, guardMs, lost) {
  while (Atomics.load(control, 0) !== seq && performance.now() < spinUntil);
  const deadline = performance.now() + guardMs;
  for (;;) {
    const seen = Atomics.load(control, 0);
    if (seen === seq) return 'ok';
    if (lost()) return 'lost';
    const left = deadline - performance.now();
    if (left <= 0 || Atomics.wait(control, 0, seen, left) === 'timed-out') {
      return Atomics.load(control, 0) === seq ? 'ok' : 'timed-out';
    }
  }
}
