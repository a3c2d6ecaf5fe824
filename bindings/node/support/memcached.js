// Real memcached processes on free loopback ports, started and stopped by the tests. A test that
// cannot start memcached fails with the command that installs it; it never skips.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

function binary() {
  for (const candidate of ['/usr/bin/memcached', '/usr/local/bin/memcached']) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v memcached']).toString().trim();
  } catch {
    throw new Error('memcached is not installed: run `just setup` (or `apt-get install memcached`)');
  }
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

const connectable = (port) =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

/** memcached on a free loopback port, with `extra` arguments (`-Y file`, `-Z -o ...`). */
export async function startMemcached(extra = []) {
  const port = await freePort();
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '1', ...extra];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  const child = spawn(binary(), args, { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await connectable(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`memcached did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    config: { 'connection.host': '127.0.0.1', 'connection.port': String(port) },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }),
    /** One raw command; resolves with the reply up to its terminator. */
    raw: (command) =>
      new Promise((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(command));
        let reply = '';
        socket.on('data', (b) => {
          reply += b.toString('latin1');
          if (/(END|HD|EN|NF|STORED|DELETED|NOT_FOUND)\r\n$/.test(reply)) {
            socket.destroy();
            resolve(reply);
          }
        });
        socket.on('error', reject);
      }),
  };
}

/** Polls `condition` until it holds; fails after `limitMs` instead of hanging. */
export async function waitUntil(condition, limitMs = 10_000) {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 10));
  }
}
