/**
 * What checking a downloaded artifact's SHA-256 costs an agent, beside what it already
 * spends on the SHA-1 of every piece: both as the agent runs them, on one hash worker
 * reading the file itself, from the page cache (where a just-downloaded artifact is).
 * Prints CPU seconds per GiB (the process's, worker threads included) and wall time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../apps/cli/src/byte-size.js';
import { HashPool, type ReadSegment } from '../libs/hashing/src/index.js';
import { generateRandomFile, sha1Of } from './lib/files.js';
import { median, table } from './lib/stats.js';

const HELP = `Usage: npm run bench:sha256 -- [--size 1GiB] [--runs 5]

The whole-artifact SHA-256 an agent takes before publishing, against the SHA-1 piece
hashes (1 MiB pieces) it takes while downloading: CPU seconds per GiB and wall time,
medians of --runs, the file in the page cache. Asserts nothing.
`;

const GIB = 1024 ** 3;

async function measure(run: () => Promise<unknown>, bytes: number): Promise<{ cpu: number; wall: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const cpu = process.cpuUsage(cpu0);
  return { cpu: ((cpu.user + cpu.system) / 1e6) * (GIB / bytes), wall: ((performance.now() - t0) / 1000) * (GIB / bytes) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const size = parseByteSize(values.size ?? '1GiB', '--size');
  const runs = Number(values.runs ?? 5);
  const dir = await mkdtemp(join(tmpdir(), 'swarmship-bench-sha256-'));
  const pool = new HashPool(1);
  try {
    const path = join(dir, 'artifact.bin');
    await generateRandomFile(path, size);
    await sha1Of(path);
    const segments: ReadSegment[] = [{ path, position: 0, length: size }];
    const sha256: { cpu: number; wall: number }[] = [];
    const sha1: { cpu: number; wall: number }[] = [];
    for (let i = 0; i < runs; i++) {
      sha256.push(await measure(() => pool.sha256Files(segments), size));
      sha1.push(await measure(() => pool.hashFiles(segments, 1024 * 1024), size));
    }
    const row = (name: string, xs: { cpu: number; wall: number }[]) => [name, median(xs.map((x) => x.cpu)).toFixed(2), median(xs.map((x) => x.wall)).toFixed(2)];
    process.stdout.write(`${table(['per GiB', 'CPU s', 'wall s'], [row('artifact SHA-256 (before publishing)', sha256), row('piece SHA-1 (while downloading)', sha1)])}\n`);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
