// Installs the npm packages when they are missing or older than package-lock.json, so
// `npm test` and `npm run demo` work on a fresh clone with one command.
import { existsSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';

const marker = 'node_modules/.package-lock.json';
const stale = !existsSync(marker) ||
  (existsSync('package-lock.json') && statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs + 1000);
if (stale) {
  console.error('swarmship: installing npm packages (npm ci)…');
  // No install scripts: none of our packages needs one, and the benchmark-only tracker's
  // WebRTC dependency would try to download a native build.
  execSync(existsSync('package-lock.json') ? 'npm ci --ignore-scripts' : 'npm install --ignore-scripts', { stdio: 'inherit' });
}
