import type { ParseArgsConfig } from 'node:util';

/** What a command reads and writes, so tests can run commands in-process. */
export interface CommandIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  /** Resolves when the user asks the command to stop (SIGINT/SIGTERM). */
  interrupted: Promise<void>;
}

export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  name: string;
  /** The whole `--help` text: usage line, what it does, every option, an example. */
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** How many positional arguments: [min, max]. */
  positionals: [number, number];
  /** Returns the process exit code. */
  run(values: ParsedValues, positionals: string[], io: CommandIo): Promise<number>;
}

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Bad input the user gave (a malformed torrent, an unreadable path): one line, exit 2. */
export class InputError extends Error {
  override name = 'InputError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
