#!/usr/bin/env node
/**
 * The agent as its own entry point (container images, `nest start agent`): the same
 * process as `swarmship agent`, so flags, environment and output match.
 */
import { runCli } from '../../cli/src/cli.js';

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
const code = await runCli(['agent', ...process.argv.slice(2)], { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupted });
process.exitCode = code;
setImmediate(() => process.exit(code));
