// Installs the npm packages when they are missing or older than package-lock.json, so
// `npm test` and `npm run demo` work on a fresh clone with one command.
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

const marker = 'node_modules/.package-lock.json';
// Two `npm test` runs at once must not both run `npm ci`: each deletes what the other installs.
const lock = '.npm-install.lock';
// Longer than any install takes: a lock this old was left by a killed install.
const STALE_MS = 10 * 60_000;
const isStale = () => !existsSync(marker) ||
  (existsSync('package-lock.json') && statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs + 1000);
const ignoreGone = (fn) => {
  try {
    return fn();
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    return undefined;
  }
};

if (isStale()) {
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    // The holder may release (or another waiter remove a stale lock) at any moment.
    const since = ignoreGone(() => Date.now() - statSync(lock).mtimeMs);
    if (since !== undefined && since > STALE_MS) ignoreGone(() => rmdirSync(lock));
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
  try {
    if (isStale()) {
      console.error('swarmship: installing npm packages (npm ci)…');
      // No install scripts: none of our packages needs one, and the benchmark-only tracker's
      // WebRTC dependency would try to download a native build.
      execSync(existsSync('package-lock.json') ? 'npm ci --ignore-scripts' : 'npm install --ignore-scripts', { stdio: 'inherit' });
    }
  } finally {
    ignoreGone(() => rmdirSync(lock));
  }
}
