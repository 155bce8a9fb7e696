#!/usr/bin/env node
import type { CommandIo } from './command.js';
import { tuneV8ForCommand } from './v8-flags.js';

// Before the command's modules load: loading is what grows V8's young generation.
tuneV8ForCommand(process.argv[2]);
const { runCli } = await import('./cli.js');

function processIo(): CommandIo {
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupted };
}

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
// Sockets and timers of long-running commands are closed by the commands themselves;
// exit explicitly so a forgotten handle can never hang a CI pipeline.
setImmediate(() => process.exit(code));
