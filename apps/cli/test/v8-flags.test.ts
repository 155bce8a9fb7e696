import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../../dist/apps/cli/src/v8-flags.js', import.meta.url));
const MIB = 1024 * 1024;

/** Runs `script` as an ES module in a node of its own (no NODE_OPTIONS), which must exit 0. */
function runNode(nodeArgs: string[], script: string): { stdout: string; stderr: string } {
  const out = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(out.status, out.stderr).toBe(0);
  return out;
}

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
  return JSON.parse(runNode(nodeArgs, script).stdout.trim()) as { applied: boolean | null; newSpace: number };
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

/**
 * Runs a node that (maybe) calls keepOptimisingCompilesSmall, then has TurboFan optimise a
 * function that calls twelve small ones, and counts how many it inlined.
 */
function inlinedCalls(nodeArgs: string[], callIt: boolean): { applied: boolean | null; inlined: number } {
  const script = `
    import { keepOptimisingCompilesSmall } from ${JSON.stringify(MODULE)};
    const applied = ${callIt} ? keepOptimisingCompilesSmall() : null;
    const fs = Array.from({ length: 12 }, (_, k) => new Function('a', 'b',
      'let s = a; for (let i = 0; i < b; i++) { s = (s * 31 + i + ' + k + ') | 0; if (s > 1000) s -= 999; else s += ' + k + '; } return s;'));
    const [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = fs;
    function unrolled(a) { return f0(a, 3) + f1(a, 3) + f2(a, 3) + f3(a, 3) + f4(a, 3) + f5(a, 3) + f6(a, 3) + f7(a, 3) + f8(a, 3) + f9(a, 3) + f10(a, 3) + f11(a, 3); }
    %PrepareFunctionForOptimization(unrolled);
    for (let i = 0; i < 100; i++) unrolled(i);
    %OptimizeFunctionOnNextCall(unrolled);
    unrolled(1);
    console.error(JSON.stringify({ applied }));
  `;
  const out = runNode([...nodeArgs, '--allow-natives-syntax', '--trace-turbo-inlining'], script);
  const { applied } = JSON.parse(out.stderr.trim().split('\n').pop()!) as { applied: boolean | null };
  return { applied, inlined: out.stdout.split('\n').filter((l) => l.startsWith('Inlining ') && l.includes('unrolled')).length };
}

describe('keepOptimisingCompilesSmall', () => {
  it('caps what the optimising compiler inlines into one function', () => {
    const full = inlinedCalls([], false);
    expect(full.inlined).toBe(12);
    const capped = inlinedCalls([], true);
    expect(capped.applied).toBe(true);
    expect(capped.inlined).toBeGreaterThan(0);
    expect(capped.inlined).toBeLessThanOrEqual(4);
  });

  it('leaves the choice to whoever started node with an inlining budget of their own', () => {
    const chosen = inlinedCalls(['--max-inlined-bytecode-size-cumulative=2000'], true);
    expect(chosen.applied).toBe(false);
    expect(chosen.inlined).toBe(12);
  });
});
