import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseByteRate } from '../../contracts/src/rate.js';
import { byteRate, ConfigError, ensureTokens, loadControllerConfig } from '../src/config.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'controller-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('controller config', () => {
  it('has a default for every setting that works on one machine', async () => {
    const c = await loadControllerConfig({ cwd: dir, env: {} });
    expect(c).toMatchObject({ dataDir: join(dir, '.swarmship', 'controller'), port: 7070, agentPort: 7071, peerPort: 6881, publicHost: '127.0.0.1', originUploadLimit: Infinity, superSeed: true });
  });

  it('takes flags over environment over the YAML file', async () => {
    await writeFile(join(dir, 'c.yaml'), 'port: 9000\nagentPort: 9001\npeerPort: 9002\noriginUploadLimit: 10MB\n');
    const c = await loadControllerConfig({ cwd: dir, flags: { config: 'c.yaml', port: '8000' }, env: { SWARMSHIP_AGENT_PORT: '8001' } });
    expect(c).toMatchObject({ port: 8000, agentPort: 8001, peerPort: 9002, originUploadLimit: 10_000_000 });
  });

  it('names the setting at fault', async () => {
    await expect(loadControllerConfig({ cwd: dir, env: { SWARMSHIP_PORT: 'http' } })).rejects.toThrow(/^SWARMSHIP_PORT: must be a whole number/);
    await expect(loadControllerConfig({ cwd: dir, flags: { 'origin-upload-limit': 'fast' } })).rejects.toThrow(/^--origin-upload-limit:/);
    await expect(loadControllerConfig({ cwd: dir, env: { SWARMSHIP_TOKEN: 'short' } })).rejects.toThrow(/^SWARMSHIP_TOKEN: must be at least 16/);
    await writeFile(join(dir, 'bad.yaml'), 'prot: 1\n');
    await expect(loadControllerConfig({ cwd: dir, flags: { config: 'bad.yaml' } })).rejects.toThrow(/unknown setting 'prot'/);
    await expect(loadControllerConfig({ cwd: dir, flags: { port: '7000', 'agent-port': '7000' } })).rejects.toBeInstanceOf(ConfigError);
  });

  // Found by the fuzz target controller-config (test/fuzz): each threw a TypeError or gave a NaN rate.
  it.each([
    ['dataDir:\n  toString: 1\n', /c.yaml: dataDir: expected text/],
    ['pathRoots: [a, {toString: 1}]\n', /c.yaml: pathRoots: expected text/],
    ['host: &x [*x]\n', /c.yaml: host: expected text/],
    ['originUploadLimit: 1constructor\n', /c.yaml: originUploadLimit: must be bytes per second/],
  ])('refuses %j in the file with the setting named, not a crash', async (yaml, message) => {
    await writeFile(join(dir, 'c.yaml'), yaml);
    await expect(loadControllerConfig({ cwd: dir, flags: { config: 'c.yaml' } })).rejects.toThrow(message);
    await expect(loadControllerConfig({ cwd: dir, flags: { config: 'c.yaml' } })).rejects.toBeInstanceOf(ConfigError);
  });

  // The agent reads the same spellings (parseByteRate); before, 100m was refused here and meant 100 MB/s there.
  it.each(['100m', '20k', '2g', '64MiB', '800mbit', '1.5GB/s', '0', '0MB', 'unlimited'])('reads the rate %j as the agent does', (text) => {
    expect(byteRate(text, '--origin-upload-limit')).toBe(parseByteRate(text));
  });

  it('refuses an origin rate under 16KiB per second', () => {
    expect(() => byteRate('16k', '--origin-upload-limit')).toThrow(/^--origin-upload-limit: at least 16KiB per second/);
    expect(byteRate('16KiB', '--origin-upload-limit')).toBe(16 * 1024);
  });

  it('never echoes a rejected token', async () => {
    await expect(loadControllerConfig({ cwd: dir, env: { SWARMSHIP_AGENT_TOKEN: 'has space secret value' } })).rejects.not.toThrow(/secret/);
  });

  it('generates tokens once, stores them 0600 and keeps them across starts', async () => {
    const c = await ensureTokens(await loadControllerConfig({ cwd: dir, flags: { data: 'data' } }));
    expect(c.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(c.agentToken).not.toBe(c.token);
    expect(c.tokensFile).toBe(join(dir, 'data', 'tokens.yaml'));
    expect((await stat(c.tokensFile!)).mode & 0o777).toBe(0o600);
    const again = await ensureTokens(await loadControllerConfig({ cwd: dir, flags: { data: 'data' } }));
    expect([again.token, again.agentToken]).toEqual([c.token, c.agentToken]);
    const given = await ensureTokens(await loadControllerConfig({ cwd: dir, flags: { data: 'data' }, env: { SWARMSHIP_TOKEN: 'a'.repeat(20) } }));
    expect(given.token).toBe('a'.repeat(20));
    expect(given.agentToken).toBe(c.agentToken);
    expect(await readFile(c.tokensFile!, 'utf8')).not.toContain('a'.repeat(20));
  });
});
