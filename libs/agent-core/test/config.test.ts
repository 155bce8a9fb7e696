import { describe, expect, it } from 'vitest';
import { AgentConfigError, parseConfigFile, resolveAgentConfig } from '../src/config.js';

const resolveWith = (flags = {}, env: NodeJS.ProcessEnv = {}, yaml?: string) =>
  resolveAgentConfig({ flags, env, file: yaml === undefined ? undefined : parseConfigFile(yaml, 'agent.yaml'), fileName: 'agent.yaml' });

describe('agent configuration', () => {
  it('has defaults that work on one machine', () => {
    const c = resolveWith();
    expect(c).toMatchObject({ controller: { host: '127.0.0.1', port: 7071 }, token: '', peerPort: 6881, keepVersions: 2, seedSeconds: Infinity, uploadRateLimit: Infinity });
    expect(c.dataDir.endsWith('.swarmship/agent')).toBe(true);
  });

  it('takes flags over environment over the YAML file', () => {
    const yaml = 'controller: tcp://file:1\nname: from-file\nlabels: { zone: eu-1 }\nkeepVersions: 5\nseedFor: 12h\ntoken: file-token\n';
    const c = resolveWith({ name: 'from-flag' }, { SWARMSHIP_NODE_NAME: 'from-env', SWARMSHIP_CONTROLLER: 'ctl:7001', SWARMSHIP_UPLOAD_LIMIT: '100mbit' }, yaml);
    expect(c).toMatchObject({ name: 'from-flag', controller: { host: 'ctl', port: 7001 }, labels: { zone: 'eu-1' }, keepVersions: 5, seedSeconds: 43200, token: 'file-token', uploadRateLimit: 12.5e6 });
    expect(resolveWith({ labels: 'role=web, zone=us-2' }).labels).toEqual({ role: 'web', zone: 'us-2' });
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
