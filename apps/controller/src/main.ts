#!/usr/bin/env node
/**
 * The controller as its own entry point (container images, `nest start controller`): the
 * same process as `swarmship controller`, so flags, environment and output match.
 */
import { runCli } from '../../cli/src/cli.js';

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
const code = await runCli(['controller', ...process.argv.slice(2)], { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupted });
process.exitCode = code;
setImmediate(() => process.exit(code));
