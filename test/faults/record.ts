/**
 * What each fault scenario reports, one JSON line per run, so `npm run test:faults`
 * can publish docs/RELIABILITY.md from what actually happened. Inside plain `npm test`
 * (no results file named) recording is a no-op and every scenario runs once.
 */
import { appendFile } from 'node:fs/promises';

export interface FaultRun {
  /** Stable id, ordered as in the issue: '1-agent-sigkill', '2-origin-killed', … */
  scenario: string;
  /** One line a reader understands without the code. */
  title: string;
  run: number;
  ok: boolean;
  /** Bytes a node should hold but does not (0 unless the fault lost data). */
  bytesLost: number;
  /** Bytes published that differ from the artifact (must be 0). */
  bytesCorrupted: number;
  /** From the fault's end (restart, link up, space freed) to every copy verified; null when not meaningful. */
  recoveryMs: number | null;
  /** Scenario-specific figure worth a column, e.g. "refetched 3 pieces (in flight: 4)". */
  detail?: string;
}

export interface FaultSkip {
  scenario: string;
  title: string;
  skipped: string;
}

/** Full runs under `npm run test:faults`, a quick proof inside `npm test`. */
export function faultRuns(full: number, quick = 1): number {
  return process.env.SWARMSHIP_FAULTS_FULL === '1' ? full : quick;
}

export async function recordFaultRun(run: FaultRun | FaultSkip): Promise<void> {
  const file = process.env.SWARMSHIP_FAULT_RESULTS;
  if (!file) return;
  await appendFile(file, `${JSON.stringify(run)}\n`);
}
