/**
 * Every fuzz target (test/fuzz/targets.ts) with a few thousand cases, so `npm test`
 * catches a crash, a hang or an untyped error on the way; `npm run fuzz` runs each with
 * 100,000 and more. A failure prints the seed and the shrunk counterexample;
 * SWARMSHIP_FUZZ_SEED=<seed> replays it here.
 */
import { describe, expect, it } from 'vitest';
import { runTarget } from './fuzz/runner.js';
import { TARGETS } from './fuzz/targets.js';

const RUNS = Number(process.env['SWARMSHIP_FUZZ_RUNS'] ?? 2000);
const SEED = process.env['SWARMSHIP_FUZZ_SEED'] === undefined ? undefined : Number(process.env['SWARMSHIP_FUZZ_SEED']);

describe('fuzz: bad input is refused with a typed error, quickly, in bounded memory', () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${target.about}`, async () => {
      const report = await runTarget(target, { runs: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) });
      const f = report.failure;
      expect(f, f && `seed ${f.seed}${f.path ? `, path ${f.path}` : ''}\n${f.error}\ncounterexample: ${f.counterexample}`).toBeUndefined();
      expect(report.cases).toBe(RUNS);
      // A target that refuses everything reaches no deep code: valid inputs must get through.
      expect(report.accepted).toBeGreaterThan(0);
    });
  }
});
