// Installs the npm packages when they are missing or older than package-lock.json, so
// `npm test` and `npm run demo` work on a fresh clone with one command.
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

const marker = 'node_modules/.package-lock.json';
// Two `npm test` runs at once must not both run `npm ci`: each deletes what the other installs.
const lock = '.npm-install.lock';
const isStale = () => !existsSync(marker) ||
  (existsSync('package-lock.json') && statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs + 1000);

if (isStale()) {
  const waitUntil = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A lock left by a killed install is older than any install takes.
      if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000 || Date.now() > waitUntil) {
        rmdirSync(lock);
        continue;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    if (isStale()) {
      console.error('swarmship: installing npm packages (npm ci)…');
      // No install scripts: none of our packages needs one, and the benchmark-only tracker's
      // WebRTC dependency would try to download a native build.
      execSync(existsSync('package-lock.json') ? 'npm ci --ignore-scripts' : 'npm install --ignore-scripts', { stdio: 'inherit' });
    }
  } finally {
    rmdirSync(lock);
  }
}
