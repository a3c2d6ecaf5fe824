// The mailbox protocol between a lock thread and the I/O thread (src/mailbox.js), with no
// memcached: one thread asks, another answers. Each answer is followed by a second, late
// `Atomics.notify`, as when the answering thread is preempted between its store and its notify.
// A waiter that lets such a wake-up lose the next answer sleeps until its guard instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';

import { answer, awaitAnswer, nextCall } from '../src/mailbox.js';

const CALLS = 50_000;

const ANSWERER = `
  import { parentPort, workerData } from 'node:worker_threads';
  const { answer } = await import(workerData.mailbox);
  parentPort.postMessage('ready');
  const control = new Int32Array(workerData.buffer, 0, 4);
  const asked = new Int32Array(workerData.asked);
  const pause = (us) => { const until = performance.now() + us / 1000; while (performance.now() < until); };
  for (let seq = 1; seq <= ${CALLS}; seq++) {
    while (Atomics.load(asked, 0) < seq) Atomics.wait(asked, 0, seq - 1, 1000);
    answer(control, seq, 0, seq % 1000);
    pause(Math.random() * 30);
    Atomics.notify(control, 0); // the late wake-up of this answer
  }
`;

test('no answer is lost to a late wake-up', async () => {
  const buffer = new SharedArrayBuffer(16);
  const askedBuffer = new SharedArrayBuffer(4);
  const control = new Int32Array(buffer, 0, 4);
  const asked = new Int32Array(askedBuffer);
  const answerer = new Worker(new URL(`data:text/javascript,${encodeURIComponent(ANSWERER)}`), {
    workerData: { buffer, asked: askedBuffer, mailbox: new URL('../src/mailbox.js', import.meta.url).href },
  });
  const ended = new Promise((resolve, reject) => {
    answerer.on('exit', resolve);
    answerer.on('error', reject);
  });
  ended.catch(() => {});
  // Its start-up (a new isolate, the module's import) is not part of the first call's wait.
  await Promise.race([once(answerer, 'message'), ended]);
  const outcomes = { ok: 0 };
  try {
    for (let seq = 1; seq <= CALLS; seq++) {
      Atomics.store(asked, 0, seq);
      Atomics.notify(asked, 0);
      // Half the calls poll first (the pool's only busy thread), half sleep at once.
      const spinUntil = performance.now() + (seq % 2) * 0.05;
      const outcome = awaitAnswer(control, seq, spinUntil, 2000, () => false);
      if (outcome !== 'ok') {
        assert.fail(`call ${seq} of ${CALLS}: ${outcome} (the last answer written: ${Atomics.load(control, 0)})`);
      }
      assert.equal(control[2], seq % 1000, `call ${seq} read its own answer`);
      outcomes.ok++;
    }
    await ended;
  } finally {
    await answerer.terminate();
  }
  assert.equal(outcomes.ok, CALLS);
});

test('call numbers stay within the 32 bits of the mailbox', () => {
  // A lock thread that has made 2^31 - 2 calls (days of traffic on one thread) makes three more:
  // each must still be answered.
  const control = new Int32Array(new SharedArrayBuffer(16), 0, 4);
  let seq = 2 ** 31 - 2;
  for (let call = 0; call < 3; call++) {
    seq = nextCall(seq);
    answer(control, seq, 0, call);
    assert.equal(awaitAnswer(control, seq, 0, 100, () => false), 'ok', `call number ${seq}`);
    assert.equal(control[2], call);
  }
});
