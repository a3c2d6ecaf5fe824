// The mailbox between a lock thread and the I/O thread: one SharedArrayBuffer per lock thread.
// Int32 [0] the sequence number of the last call answered (written last, with Atomics.store),
// [1] status, [2] byte count or connection id; bytes from DATA_OFFSET carry the data (the bytes
// read, or why a TLS handshake failed).
//
// The lock thread posts call `seq` (numbers only grow) and blocks in Atomics.wait until [0]
// says `seq`. Nothing but the answering thread ever writes [0], so no answer can be overwritten
// or missed: a wake-up that finds another number (an earlier answer's late notify, an answer to
// a call the lock thread gave up on) waits again on the number it found, and Atomics.wait
// returns at once if [0] changed in between. An earlier version had the waiter reset a done
// flag after such a wake-up; an answer written in that instant was lost, and the call failed
// with `network error` after its guard (test/mailbox.test.js).

export const DATA_OFFSET = 16;
/** Written into [0] when no answer can come any more (the I/O thread died). */
export const NO_ANSWER = -1;

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
