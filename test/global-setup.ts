import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Cross-process tests run the built command (dist/apps/cli/src/main.js), so the build
 * must match the sources under test: compile once before any test file runs.
 */
export default function setup(): void {
  // For a quick run of unit tests while another part of the tree does not compile yet.
  if (process.env.SWARMSHIP_SKIP_BUILD === '1') return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
