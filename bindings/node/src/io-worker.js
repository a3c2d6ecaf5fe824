// The I/O thread: owns every TCP socket (node:net, TCP_NODELAY) and serves the blocking socket
// calls of the lock threads. Each lock thread attaches a MessagePort and a SharedArrayBuffer
// mailbox; a call is one message, and the answer is written into the mailbox and signalled
// with Atomics.notify, which wakes the lock thread blocked in Atomics.wait.
//
// Mailbox layout: Int32 [0] done flag, [1] status, [2] byte count or connection id, [3] call
// sequence number; bytes from offset 16 carry the data read.
import net from 'node:net';
import { parentPort } from 'node:worker_threads';

export const STATUS = { ok: 0, refused: 1, 'timed-out': 2, closed: 3, other: 4 };
const TIMED_OUT = new Set(['ETIMEDOUT']);
const REFUSED = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const CLOSED = new Set(['EPIPE', 'ENOTCONN']);
let nextConnection = 1;

function serve(port, mailbox) {
  const control = new Int32Array(mailbox, 0, 4);
  const data = new Uint8Array(mailbox, 16);
  const connections = new Map();

  const reply = (seq, status, payload) => {
    let length = 0;
    if (payload instanceof Uint8Array) {
      data.set(payload, 0);
      length = payload.length;
    } else if (typeof payload === 'number') {
      length = payload;
    }
    control[1] = status;
    control[2] = length;
    control[3] = seq;
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
  };
  const take = (c, max) => {
    const all = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks);
    const out = all.subarray(0, max);
    const rest = all.subarray(max);
    c.chunks = rest.length ? [rest] : [];
    c.buffered = rest.length;
    return out;
  };
  const errorStatus = (e) =>
    TIMED_OUT.has(e.code) ? STATUS['timed-out'] : REFUSED.has(e.code) ? STATUS.refused : CLOSED.has(e.code) ? STATUS.closed : STATUS.other;
  const settle = (c) => {
    const p = c.pending;
    if (!p) return;
    if (c.buffered > 0) {
      c.pending = null;
      clearTimeout(p.timer);
      reply(p.seq, STATUS.ok, take(c, p.max));
    } else if (c.error || c.ended) {
      c.pending = null;
      clearTimeout(p.timer);
      reply(p.seq, c.error ? errorStatus(c.error) : STATUS.closed, 0);
    }
  };
  const awaitBytes = (c, seq, max, timeout) => {
    const timer = setTimeout(() => {
      c.pending = null;
      reply(seq, STATUS['timed-out'], 0);
    }, Math.max(1, timeout));
    c.pending = { seq, max: Math.max(1, Math.min(max, data.length)), timer };
    settle(c);
  };

  // The lock thread ended (its worker terminated): its connections go with it.
  port.on('close', () => {
    for (const c of connections.values()) {
      if (c.pending) clearTimeout(c.pending.timer);
      c.socket.destroy();
    }
    connections.clear();
  });

  port.on('message', (m) => {
    switch (m.op) {
      case 'connect': {
        let done = false;
        const socket = net.connect({ host: m.host, port: m.port, noDelay: true });
        const c = { socket, chunks: [], buffered: 0, ended: false, error: null, pending: null };
        const timer = setTimeout(() => {
          if (done) return;
          done = true;
          socket.destroy();
          reply(m.seq, STATUS['timed-out'], 0);
        }, Math.max(1, m.timeout));
        socket.on('connect', () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          const id = nextConnection++;
          connections.set(id, c);
          reply(m.seq, STATUS.ok, id);
        });
        socket.on('data', (bytes) => {
          c.chunks.push(bytes);
          c.buffered += bytes.length;
          settle(c);
        });
        socket.on('end', () => {
          c.ended = true;
          settle(c);
        });
        socket.on('error', (e) => {
          c.error = e;
          if (!done) {
            done = true;
            clearTimeout(timer);
            reply(m.seq, errorStatus(e), 0);
          } else {
            settle(c);
          }
        });
        break;
      }
      case 'exchange':
      case 'receive': {
        const c = connections.get(m.id);
        if (!c) {
          reply(m.seq, STATUS.other, 0);
          break;
        }
        if (m.op === 'exchange') {
          if (c.error || c.ended) {
            reply(m.seq, c.error ? errorStatus(c.error) : STATUS.closed, 0);
            break;
          }
          c.socket.write(m.request);
        }
        awaitBytes(c, m.seq, m.max, m.timeout);
        break;
      }
      case 'drop': {
        const c = connections.get(m.id);
        if (c) {
          if (c.pending) clearTimeout(c.pending.timer);
          c.socket.destroy();
          connections.delete(m.id);
        }
        break;
      }
      default:
        break;
    }
  });
}

if (parentPort) {
  parentPort.on('message', (m) => {
    if (m.type === 'attach') serve(m.port, m.mailbox);
  });
}
