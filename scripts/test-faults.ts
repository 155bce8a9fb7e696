/**
 * `npm run test:faults`: runs every fault scenario under test/faults at full repetition
 * (SWARMSHIP_FAULTS_FULL=1), collects the runs each scenario records, and writes
 * docs/RELIABILITY.md: scenario, runs, failures, bytes lost and corrupted, recovery time.
 * Exits non-zero when any run failed or any byte was lost or corrupted.
 *
 * Extra arguments go to vitest, e.g. `npm run test:faults -- test/faults/agent-sigkill`; such a
 * partial run prints its table and leaves docs/RELIABILITY.md alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { FaultRun, FaultSkip } from '../test/faults/record.js';

const root = resolve('.');
const work = mkdtempSync(join(tmpdir(), 'swarmship-faults-'));
const resultsFile = join(work, 'runs.jsonl');
writeFileSync(resultsFile, '');

const started = Date.now();
const vitest = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.faults.config.ts', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, SWARMSHIP_FAULTS_FULL: '1', SWARMSHIP_FAULT_RESULTS: resultsFile, SWARMSHIP_SKIP_BUILD: '1' },
});
const lines = readFileSync(resultsFile, 'utf8').split('\n').filter((l) => l !== '');
rmSync(work, { recursive: true, force: true });
const records = lines.map((l) => JSON.parse(l) as FaultRun | FaultSkip);

const report = renderReliability(records, { minutes: (Date.now() - started) / 60_000, vitestStatus: vitest.status });
// The page is the record of every scenario: a run of some of them prints, and leaves it alone.
if (process.argv.length > 2) {
  process.stdout.write(`\n${report}\n(a subset ran: docs/RELIABILITY.md left as it was)\n`);
} else {
  writeFileSync(join(root, 'docs/RELIABILITY.md'), report);
  process.stdout.write(`\nwrote docs/RELIABILITY.md (${records.length} runs recorded)\n`);
}
const failed = records.some((r) => 'ok' in r && (!r.ok || r.bytesCorrupted > 0 || r.bytesLost > 0));
process.exit(vitest.status !== 0 || failed ? 1 : 0);

function renderReliability(all: (FaultRun | FaultSkip)[], meta: { minutes: number; vitestStatus: number | null }): string {
  const byScenario = new Map<string, (FaultRun | FaultSkip)[]>();
  for (const r of all) byScenario.set(r.scenario, [...(byScenario.get(r.scenario) ?? []), r]);
  const ids = [...byScenario.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const rows: string[] = [];
  const skipped: string[] = [];
  for (const id of ids) {
    const recs = byScenario.get(id)!;
    const runs = recs.filter((r): r is FaultRun => 'ok' in r);
    const skips = recs.filter((r): r is FaultSkip => 'skipped' in r);
    for (const s of skips) skipped.push(`- **${s.title}** (${s.scenario}): ${s.skipped}`);
    if (runs.length === 0) continue;
    const recovery = runs.map((r) => r.recoveryMs).filter((ms): ms is number => ms !== null).sort((a, b) => a - b);
    const details = [...new Set(runs.map((r) => r.detail).filter((d): d is string => !!d))];
    rows.push([
      runs[0]!.title,
      String(runs.length),
      String(runs.filter((r) => !r.ok).length),
      String(runs.reduce((s, r) => s + r.bytesLost, 0)),
      String(runs.reduce((s, r) => s + r.bytesCorrupted, 0)),
      recovery.length === 0 ? '—' : `${seconds(recovery[Math.floor(recovery.length / 2)]!)} / ${seconds(recovery[recovery.length - 1]!)}`,
      details.slice(0, 3).join('; ').replace(/\|/g, '\\|') || '',
    ].join(' | ').replace(/^/, '| ').concat(' |'));
  }
  return [
    '# Reliability',
    '',
    'What happens to a rollout when things break, measured by `npm run test:faults`, which',
    'runs every scenario under `test/faults/` several times and rewrites this page. Every run',
    'ends with each node\'s published copy compared byte for byte with the artifact. `npm test`',
    'runs the same scenarios once each, so CI proves them on every change.',
    '',
    `Last run: ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${meta.minutes.toFixed(1)} minutes; vitest exit status ${meta.vitestStatus}.`,
    '',
    '| scenario | runs | failures | bytes lost | bytes corrupted | recovery (median / max) | notes |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...(skipped.length > 0 ? ['## Not run on this machine', '', ...skipped, ''] : []),
    'Recovery is measured from the end of the fault (process restarted, link back up, space',
    'freed) to the last verified copy. "Bytes corrupted" counts published bytes that differ',
    'from the artifact; "bytes lost" counts bytes a node should hold at the end and does not.',
    '',
  ].join('\n');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
