import { UsageError } from './command.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * A size in bytes as typed on a command line: `262144`, `256K`, `1MiB`, `4M`, `4MB`.
 * Suffixes are binary (K, KiB and KB all mean 1024) because the sizes given this way,
 * piece lengths, are powers of two; a decimal reading of `4MB` could never be valid.
 */
export function parseByteSize(text: string, flag: string): number {
  const m = /^(\d+)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag} ${text}: expected a size in bytes such as 262144, 256K or 4MiB`);
  const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag} ${text}: too large`);
  return bytes;
}
