// The I/O thread: owns every TCP socket (node:net, TCP_NODELAY) and serves the blocking socket
// calls of the lock threads. Each lock thread attaches a MessagePort and a SharedArrayBuffer
// mailbox; a call is one message, and the answer is written into the mailbox and signalled
// with Atomics.notify, which wakes the lock thread blocked in Atomics.wait.
//
// The mailbox's layout and its protocol are in mailbox.js.
//
// TLS (a connection whose component asked for it) is node:tls: the CA, client certificate and
// key files are read at each connect, the certificate is checked against the configured server
// name, and `verify: false` (`credential.ssl_insecure=true`) is the only way to skip that.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parentPort } from 'node:worker_threads';

import { answer, DATA_OFFSET } from './mailbox.js';

export const STATUS = { ok: 0, refused: 1, 'timed-out': 2, closed: 3, other: 4, tls: 5 };
const TIMED_OUT = new Set(['ETIMEDOUT']);
const REFUSED = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const CLOSED = new Set(['EPIPE', 'ENOTCONN']);
let nextConnection = 1;

function serve(port, mailbox) {
  const control = new Int32Array(mailbox, 0, 4);
  const data = new Uint8Array(mailbox, DATA_OFFSET);
  const connections = new Map();

  const reply = (seq, status, payload) => {
    let length = 0;
    if (payload instanceof Uint8Array) {
      data.set(payload, 0);
      length = payload.length;
    } else if (typeof payload === 'number') {
      length = payload;
    }
    answer(control, seq, status, length);
  };
  const take = (c, max) => {
    const all = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks);
    const out = all.subarray(0, max);
    const rest = all.subarray(max);
    c.chunks = rest.length ? [rest] : [];
    c.buffered = rest.length;
    return out;
  };
  /** The mailbox answer for a connection that failed: a TLS error carries its reason. */
  const fail = (c, seq) => {
    if (c.tls && isTlsError(c.error)) reply(seq, STATUS.tls, Buffer.from(tlsFailure(c.error, c.tls)));
    else reply(seq, c.error ? errorStatus(c.error) : STATUS.closed, 0);
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
      // With TLS 1.3 a server that refuses the client's certificate says so in an alert that
      // the first read receives, after the handshake.
      fail(c, p.seq);
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
        let socket;
        try {
          socket = m.tls ? tlsConnect(m) : net.connect({ host: m.host, port: m.port, noDelay: true });
        } catch (e) {
          reply(m.seq, STATUS.tls, Buffer.from(String(e?.message ?? e)));
          break;
        }
        let tcpConnected = false;
        const c = { socket, chunks: [], buffered: 0, ended: false, error: null, pending: null, tls: m.tls };
        const timer = setTimeout(() => {
          if (done) return;
          done = true;
          socket.destroy();
          reply(m.seq, STATUS['timed-out'], 0);
        }, Math.max(1, m.timeout));
        socket.on('connect', () => {
          tcpConnected = true;
        });
        socket.on(m.tls ? 'secureConnect' : 'connect', () => {
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
            if (m.tls && tcpConnected) reply(m.seq, STATUS.tls, Buffer.from(tlsFailure(e, m.tls)));
            else reply(m.seq, errorStatus(e), 0);
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
            fail(c, m.seq);
            break;
          }
          c.socket.write(m.request);
        }
        awaitBytes(c, m.seq, m.max, m.timeout);
        break;
      }
      case 'send': {
        // Written to the socket's buffer: the reply is read by a later `receive`.
        const c = connections.get(m.id);
        if (!c) reply(m.seq, STATUS.other, 0);
        else if (c.error || c.ended) fail(c, m.seq);
        else {
          c.socket.write(m.request);
          reply(m.seq, STATUS.ok, 0);
        }
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

/** A TLS socket for the connect message `m`; throws when a certificate file cannot be read. */
function tlsConnect(m) {
  const settings = m.tls;
  const read = (file, what) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read the ${what} in ${file}: ${e.message}`);
    }
  };
  const options = {
    host: m.host,
    port: m.port,
    noDelay: true,
    rejectUnauthorized: settings.verify,
    // The certificate must name the configured server name (by default the host).
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(settings.serverName, cert),
  };
  if (!net.isIP(settings.serverName)) options.servername = settings.serverName;
  if (settings.caFile) options.ca = read(settings.caFile, 'certificates');
  if (settings.certFile) options.cert = read(settings.certFile, 'client certificate');
  if (settings.keyFile) options.key = read(settings.keyFile, 'private key');
  return tls.connect(options);
}

/** An OpenSSL error (an alert, a bad record) rather than a network one. */
function isTlsError(e) {
  return Boolean(e) && (String(e.code ?? '').startsWith('ERR_SSL') || /alert|ssl/i.test(String(e.message)));
}

/** Why a handshake failed, for people; with a hint for the usual causes. */
function tlsFailure(e, settings) {
  const message = String(e?.message ?? e);
  if (/certificate|self.signed|issuer|altname/i.test(`${e?.code} ${message}`)) {
    const trust = settings.caFile ? ` with the CA in ${settings.caFile}` : ' with the default roots (set credential.ssl_ca_file)';
    return `the server's certificate is not trusted (${message}) for "${settings.serverName}"${trust}`;
  }
  if (/certificate required|alert bad certificate|unknown ca/i.test(message)) {
    return `the server refused the connection: ${message} (a server that verifies clients needs credential.ssl_crt_file and credential.ssl_key_file, with a certificate its CA signed)`;
  }
  if (/wrong version number|packet length|unknown protocol|record/i.test(message)) {
    return `${message} (does the server speak TLS? memcached needs -Z)`;
  }
  if (e?.code === 'ECONNRESET' || /socket disconnected|hang up/i.test(message)) {
    return `the server closed the connection during the handshake (does it speak TLS, or does it require a client certificate?): ${message}`;
  }
  return message;
}

if (parentPort) {
  parentPort.on('message', (m) => {
    if (m.type === 'attach') serve(m.port, m.mailbox);
  });
}
