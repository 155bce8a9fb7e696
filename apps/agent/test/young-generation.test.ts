import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../../dist/apps/agent/src/young-generation.js', import.meta.url));
const MIB = 1024 * 1024;

/**
 * Runs a node that (maybe) calls keepYoungGenerationSmall, then allocates as a starting
 * NestJS app does (many objects that survive a while), and reports the new space's size.
 */
function youngGenerationAfterLoad(nodeArgs: string[], callIt: boolean): { applied: boolean | null; newSpace: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { keepYoungGenerationSmall } from ${JSON.stringify(MODULE)};
    const applied = ${callIt} ? keepYoungGenerationSmall() : null;
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 50000) keep = []; }
    const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ applied, newSpace: space.space_size }));
  `;
  const out = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(out.status, out.stderr).toBe(0);
  return JSON.parse(out.stdout.trim()) as { applied: boolean | null; newSpace: number };
}

describe('keepYoungGenerationSmall', () => {
  it('keeps the young generation at its initial size where V8 would grow it', () => {
    const grown = youngGenerationAfterLoad([], false);
    expect(grown.newSpace).toBeGreaterThan(8 * MIB);
    const kept = youngGenerationAfterLoad([], true);
    expect(kept.applied).toBe(true);
    expect(kept.newSpace).toBeLessThanOrEqual(2 * MIB);
  });

  it('leaves the choice to whoever started node with a young generation size of their own', () => {
    const chosen = youngGenerationAfterLoad(['--max_semi_space_size=8'], true);
    expect(chosen.applied).toBe(false);
    expect(chosen.newSpace).toBeGreaterThan(8 * MIB);
  });
});
