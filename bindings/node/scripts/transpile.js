// `npm run build`: transpiles the memlock component (the very .wasm the Rust host runs) into
// generated/ with jco: synchronous instantiation, every import supplied by src/lock-worker.js.
// The component comes from $MEMLOCK_WASM, else the repository's guest build
// (`just component-wasi` or any cargo build of the host makes it).
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const wasm = process.env.MEMLOCK_WASM
  ?? resolve(root, '../../target/wasm-guest/wasm32-wasip2/guest/memlock_guest.wasm');
if (!existsSync(wasm)) {
  console.error(`memlock: no component at ${wasm}: run \`just component-wasi\` in the repository first`);
  process.exit(1);
}
const out = join(root, 'generated');
rmSync(out, { recursive: true, force: true });
const jco = join(root, 'node_modules/@bytecodealliance/jco/src/jco.js');
execFileSync(process.execPath, [
  jco, 'transpile', wasm, '--name', 'memlock', '--instantiation', 'sync', '--no-typescript',
  '--quiet', '-o', out,
], { stdio: 'inherit' });
