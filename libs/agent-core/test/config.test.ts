import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../signing/src/keys.js';
import { AgentConfigError, LOCAL_CONTROLLER_PUBLIC_KEY, parseConfigFile, resolveAgentConfig, type RawSettings } from '../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmship-agent-config-'));
const controllerKey = generateSigningKey();
const nextKey = generateSigningKey();
const keyFile = join(dir, 'controller.pub.pem');
writeFileSync(keyFile, controllerKey.key.publicPem);
writeFileSync(join(dir, 'next.pub.pem'), nextKey.key.publicPem);
writeFileSync(join(dir, 'private.pem'), controllerKey.privatePem);
/** Where a controller started with its defaults keeps its public key. */
const machine = join(dir, 'machine');
mkdirSync(join(machine, '.swarmship', 'controller'), { recursive: true });
writeFileSync(join(machine, LOCAL_CONTROLLER_PUBLIC_KEY), controllerKey.key.publicPem);
const empty = join(dir, 'empty');
mkdirSync(empty);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const resolveWith = (flags: RawSettings = {}, env: NodeJS.ProcessEnv = {}, yaml?: string) =>
  resolveAgentConfig({ flags: { trustKeys: [keyFile], ...flags }, env, file: yaml === undefined ? undefined : parseConfigFile(yaml, 'agent.yaml'), fileName: 'agent.yaml', cwd: empty });

describe('agent configuration', () => {
  it('has defaults that work on one machine, trusting the key of a controller started there with its defaults', () => {
    const c = resolveAgentConfig({ flags: {}, env: {}, cwd: machine });
    expect(c).toMatchObject({ controller: { host: '127.0.0.1', port: 7071 }, token: '', peerPort: 6881, keepVersions: 2, seedSeconds: Infinity, uploadRateLimit: Infinity, allowUnsigned: false });
    expect(c.dataDir).toBe(join(machine, '.swarmship', 'agent'));
    expect(c.trustedKeys.map((k) => [k.keyId, k.source])).toEqual([[controllerKey.key.keyId, join(machine, LOCAL_CONTROLLER_PUBLIC_KEY)]]);
  });

  it('refuses to start without a trusted key, saying where the key is', () => {
    expect(() => resolveAgentConfig({ flags: {}, env: {}, cwd: empty })).toThrow(/^--trust-key: no key to verify releases with\. .*signing-key\.pub\.pem, prints it with 'swarmship controller --print-public-key'.*--allow-unsigned/);
    // The local controller's key counts only for a controller on this machine.
    expect(() => resolveAgentConfig({ flags: { controller: 'tcp://10.1.2.3:7071' }, env: {}, cwd: machine })).toThrow(/^--trust-key: no key/);
  });

  it('starts without a key only when told to accept unsigned releases', () => {
    expect(resolveAgentConfig({ flags: { allowUnsigned: true }, env: {}, cwd: empty })).toMatchObject({ trustedKeys: [], allowUnsigned: true });
    expect(resolveAgentConfig({ flags: {}, env: { SWARMSHIP_ALLOW_UNSIGNED: 'yes' }, cwd: empty }).allowUnsigned).toBe(true);
    expect(() => resolveAgentConfig({ flags: {}, env: { SWARMSHIP_ALLOW_UNSIGNED: 'maybe' }, cwd: empty })).toThrow(/^SWARMSHIP_ALLOW_UNSIGNED: expected true or false/);
    expect(() => resolveAgentConfig({ flags: {}, env: {}, file: parseConfigFile('allowUnsigned: {toString: 1}\n', 'agent.yaml'), fileName: 'agent.yaml', cwd: empty })).toThrow(/^agent.yaml: allowUnsigned: expected true or false/);
  });

  it('writes past the page cache unless told --page-cache (flag, variable or YAML)', () => {
    const base = { allowUnsigned: true } as const;
    expect(resolveAgentConfig({ flags: base, env: {}, cwd: empty }).pageCache).toBe(false);
    expect(resolveAgentConfig({ flags: { ...base, pageCache: true }, env: {}, cwd: empty }).pageCache).toBe(true);
    expect(resolveAgentConfig({ flags: base, env: { SWARMSHIP_PAGE_CACHE: 'true' }, cwd: empty }).pageCache).toBe(true);
    expect(resolveAgentConfig({ flags: base, env: {}, file: parseConfigFile('pageCache: true\n', 'agent.yaml'), fileName: 'agent.yaml', cwd: empty }).pageCache).toBe(true);
    expect(() => resolveAgentConfig({ flags: base, env: { SWARMSHIP_PAGE_CACHE: 'sometimes' }, cwd: empty })).toThrow(/^SWARMSHIP_PAGE_CACHE: expected true or false/);
  });

  it('trusts every key given, from repeated flags, the variable (PEM or files) or the YAML file (a list)', () => {
    const ids = (c: { trustedKeys: { keyId: string }[] }) => c.trustedKeys.map((k) => k.keyId);
    const both = [controllerKey.key.keyId, nextKey.key.keyId];
    expect(ids(resolveAgentConfig({ flags: { trustKeys: ['controller.pub.pem', join(dir, 'next.pub.pem')] }, env: {}, cwd: dir }))).toEqual(both);
    expect(ids(resolveAgentConfig({ flags: {}, env: { SWARMSHIP_TRUST_KEY: controllerKey.key.publicPem + nextKey.key.publicPem }, cwd: empty }))).toEqual(both);
    expect(ids(resolveAgentConfig({ flags: {}, env: { SWARMSHIP_TRUST_KEY: 'controller.pub.pem, next.pub.pem' }, cwd: dir }))).toEqual(both);
    const yaml = `trustKeys:\n  - ${keyFile}\n  - |\n${nextKey.key.publicPem.trim().split('\n').map((l) => `    ${l}`).join('\n')}\n`;
    expect(ids(resolveAgentConfig({ flags: {}, env: {}, file: parseConfigFile(yaml, 'agent.yaml'), fileName: 'agent.yaml', cwd: empty }))).toEqual(both);
  });

  it.each([
    [{ trustKeys: [join(dir, 'private.pem')] }, /^--trust-key .*private\.pem: holds a private key/],
    [{ trustKeys: [join(dir, 'missing.pem')] }, /^--trust-key: cannot read .*missing\.pem: ENOENT/],
    [{ trustKeys: ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'] }, /^--trust-key: not a valid public key/],
  ])('refuses a key that is not an Ed25519 public key: %o', (flags, message) => {
    expect(() => resolveAgentConfig({ flags, env: {}, cwd: empty })).toThrow(message);
  });

  it('takes flags over environment over the YAML file', () => {
    const yaml = 'controller: tcp://file:1\nname: from-file\nlabels: { zone: eu-1 }\nkeepVersions: 5\nseedFor: 12h\ntoken: file-token\n';
    const c = resolveWith({ name: 'from-flag' }, { SWARMSHIP_NODE_NAME: 'from-env', SWARMSHIP_CONTROLLER: 'ctl:7001', SWARMSHIP_UPLOAD_LIMIT: '100mbit' }, yaml);
    expect(c).toMatchObject({ name: 'from-flag', controller: { host: 'ctl', port: 7001 }, labels: { zone: 'eu-1' }, keepVersions: 5, seedSeconds: 43200, token: 'file-token', uploadRateLimit: 12.5e6 });
    expect(resolveWith({ labels: 'role=web, zone=us-2' }).labels).toEqual({ role: 'web', zone: 'us-2' });
  });

  it('reads rates as the controller does: k, m, g units and unlimited', () => {
    expect(resolveWith({ uploadLimit: '100m', downloadLimit: 'unlimited' })).toMatchObject({ uploadRateLimit: 100e6, downloadRateLimit: Infinity });
    expect(resolveWith({ uploadLimit: '64MiB', downloadLimit: '0' })).toMatchObject({ uploadRateLimit: 64 * 1024 ** 2, downloadRateLimit: Infinity });
  });

  it.each([
    [{ controller: 'http://x:1' }, {}, /^--controller: "http:\/\/" is not supported/],
    [{}, { SWARMSHIP_PEER_PORT: '70000' }, /^SWARMSHIP_PEER_PORT: expected a port/],
    [{ labels: 'zone' }, {}, /^--labels: "zone" is not a label/],
    [{ keepVersions: '0' }, {}, /^--keep: expected a whole number/],
    [{}, { SWARMSHIP_SEED_FOR: 'soon' }, /^SWARMSHIP_SEED_FOR: expected "forever" or a duration/],
    [{ downloadLimit: 'fast' }, {}, /^--download-limit: expected a rate/],
    [{ name: '../etc' }, {}, /^--name: "..\/etc" is not a node name/],
  ])('names the setting at fault: %o %o', (flags, env, message) => {
    expect(() => resolveWith(flags, env)).toThrow(message);
  });

  it('refuses a bad YAML file with the key or the syntax at fault', () => {
    expect(() => parseConfigFile('peerPrt: 1\n', 'agent.yaml')).toThrow(/^agent.yaml: peerPrt: unknown setting/);
    expect(() => parseConfigFile('a: [\n', 'agent.yaml')).toThrow(AgentConfigError);
    expect(() => resolveWith({}, {}, 'peerPort: [1]\n')).toThrow(/^agent.yaml: peerPort: expected text/);
  });

  // Found by the fuzz target agent-config (test/fuzz): each threw a TypeError or gave NaN.
  it.each([
    ['labels: {a: {toString: 1}}\n', /^agent.yaml: labels: label a: expected text, got a mapping/],
    ['token: &x [*x]\n', /^agent.yaml: token: expected text, got a list/],
    ['name: &x {a: *x}\n', /^agent.yaml: name: expected text, got a mapping/],
    ['uploadLimit: 1constructor\n', /^agent.yaml: uploadLimit: expected a rate/],
  ])('refuses %j with the setting named, not a crash', (yaml, message) => {
    expect(() => resolveWith({ allowUnsigned: true }, {}, yaml)).toThrow(message);
  });
});
