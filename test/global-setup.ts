import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Cross-process tests run the built command (dist/apps/cli/src/main.js), so the build
 * must match the sources under test: compile once before any test file runs.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
