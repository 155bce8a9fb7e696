/**
 * YAML configuration: the agent's (`parseConfigFile`, then `resolveAgentConfig`) and the
 * controller's (`loadControllerConfig` reading a --config file). Inputs are valid
 * configurations written as YAML and then broken as text (anchors, aliases that loop,
 * tags, flow collections, duplicate keys, prototype names, numbers on every boundary)
 * or as documents (a setting retyped, nested, dropped). A bad file or value is an
 * AgentConfigError / ConfigError naming the setting; an accepted one is within range.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import fc from 'fast-check';
import { stringify as stringifyYaml } from 'yaml';
import { AgentConfigError, parseConfigFile, resolveAgentConfig, type AgentConfig, type RawSettings } from '../../../libs/agent-core/src/config.js';
import { ConfigError, loadControllerConfig, type ControllerConfig } from '../../../libs/controller-core/src/config.js';
import { generateSigningKey } from '../../../libs/signing/src/keys.js';
import { PROTOTYPE_KEYS, awkwardJsonLeaf, mutatedText, mutatedTree, type Tree } from '../mutate.js';
import { check, expectTyped, expectTypedAsync, type FuzzTarget, type Outcome } from '../runner.js';

/** YAML's own syntax, its tags, its number forms, and the constructs that make graphs. */
const YAML_TOKENS = [
  '\n', ': ', '- ', '  ', '\t', '&a ', '*a', '&b ', '*b', '<<: *a\n', '!!binary ', '!!set ', '!!omap ', '!!pairs ', '!!str ', '!!int ', '!!float ',
  '!!timestamp ', '!!map ', '!!seq ', '!!bool ', '!custom ', '? ', '{', '}', '[', ']', ',', '"', "'", '|', '>-', '#', '---\n', '...\n',
  '%YAML 1.1\n', '%TAG ! tag:x,2000:\n', '.nan', '.inf', '-.inf', '0x1F', '0o17', '0b101', '~', 'null', 'true', 'yes', 'on', '1e400', '1_000',
  '2001-12-14t21:59:43.10-05:00', ...PROTOTYPE_KEYS, '{toString: 1}', '{valueOf: 1, toString: 1}', '&x [*x]', '&y {k: *y}', '[&z a, *z, *z]',
  '\ufeff', '\u0000', '\\', '%', '@', '`',
];

const rate = fc.oneof(fc.constantFrom('0', '50MB', '200mbit', '1GiB', '64MiB', '100kb', '1.5MB', 'unlimited', '16KiB', '800mbit'), fc.integer({ min: 16_384, max: 10 ** 9 }).map(String));
const port = fc.integer({ min: 1, max: 65535 });
const label = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
/** Keys an agent may trust, as PEM text; and a private key, which it must refuse. */
const [KEY_A, KEY_B] = [generateSigningKey(), generateSigningKey()];
const PUBLIC_PEMS = [KEY_A.key.publicPem, KEY_B.key.publicPem];
const PRIVATE_PEM = KEY_A.privatePem;

// ---- agent ----------------------------------------------------------------------------

interface AgentSpec {
  controller: string;
  token: string;
  name: string;
  labels: Record<string, string> | string;
  data: string;
  peerPort: number;
  httpPort: number;
  uploadLimit: string;
  downloadLimit: string;
  keepVersions: number;
  seedFor: string;
  onPublish: string;
  trustKeys: string | string[] | undefined;
  allowUnsigned: boolean | string | undefined;
}

const agentSpec: fc.Arbitrary<AgentSpec> = fc.record({
  controller: fc.oneof(port.map((p) => `tcp://10.0.0.5:${p}`), fc.constantFrom('tcp://[::1]:7071', 'ctl.test:7071', 'tcp://controller.example:7071/')),
  token: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
  name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
  labels: fc.oneof(
    fc.dictionary(label, label, { maxKeys: 3 }),
    fc.dictionary(label, label, { minKeys: 1, maxKeys: 3 }).map((d) => Object.entries(d).map(([k, v]) => `${k}=${v}`).join(',')),
  ),
  data: fc.constantFrom('/var/lib/swarmship', './data', 'relative/dir'),
  peerPort: port,
  httpPort: port,
  uploadLimit: rate,
  downloadLimit: rate,
  keepVersions: fc.integer({ min: 1, max: 1000 }),
  seedFor: fc.oneof(fc.constantFrom('forever', '90s', '30m', '12h', '1.5d'), fc.nat({ max: 10_000 }).map((n) => `${n}s`)),
  onPublish: fc.constantFrom('systemctl reload app', 'true', './hooks/publish.sh'),
  trustKeys: fc.constantFrom(undefined, PUBLIC_PEMS[0]!, PUBLIC_PEMS, PUBLIC_PEMS.join('')),
  allowUnsigned: fc.constantFrom(undefined, true, false, 'yes', 'off'),
});

// Every setting the agent's file may hold (libs/agent-core/src/config.ts SPECS).
const AGENT_KEYS = ['controller', 'token', 'name', 'labels', 'data', 'peerPort', 'listenHost', 'advertiseAddress', 'uploadLimit', 'downloadLimit', 'keepVersions', 'seedFor', 'httpPort', 'onPublish', 'trustKeys', 'allowUnsigned'];

const yamlStyle = fc.record({ flow: fc.boolean(), quote: fc.boolean() });

function toYaml(doc: unknown, style: { flow: boolean; quote: boolean }): string {
  try {
    // stringify gives undefined for an undefined document (a mutation deleted the root).
    // lineWidth 0: a deeply nested flow collection stays on one line instead of indenting each level.
    return (stringifyYaml(doc, { collectionStyle: style.flow ? 'flow' : 'any', defaultStringType: style.quote ? 'QUOTE_DOUBLE' : 'PLAIN', lineWidth: 0 }) as string | undefined) ?? '';
  } catch {
    return '';
  }
}

const configKeyOf = (keys: string[]) => fc.oneof(fc.constantFrom(...keys), fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 6 }));
const configLeaf = fc.oneof(
  awkwardJsonLeaf(),
  fc.constantFrom<Tree>('1constructor', '5__proto__', '1toString', '10hasOwnProperty', '1valueof', 'tcp://h:0', 'udp://h:1', '[::1]:99999', 'forever', '1e400s', '99999999999999999999d', '-1', 'NaN'),
  fc.constantFrom<Tree>({ toString: 1 }, { valueOf: 1, toString: 1 }, { toString: 'x' }, [{ toString: 1 }]),
  fc.constantFrom<Tree>(PUBLIC_PEMS[0]!, PRIVATE_PEM, PUBLIC_PEMS[0]!.slice(0, 60), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', './key.pem', '/dev/null', [PUBLIC_PEMS[1]!, ''], '.'),
);

type ConfigInput = { text: string; valid?: AgentSpec };

const validAgentYaml = fc.tuple(agentSpec, yamlStyle).map(([spec, style]) => ({ text: toYaml(spec, style), valid: spec }));

const agentInput: fc.Arbitrary<ConfigInput> = fc.oneof(
  { weight: 1, arbitrary: validAgentYaml },
  { weight: 4, arbitrary: mutatedText(validAgentYaml.map((v) => v.text), YAML_TOKENS).map((text) => ({ text })) },
  { weight: 3, arbitrary: fc.tuple(mutatedTree(agentSpec as fc.Arbitrary<Tree>, configLeaf, configKeyOf(AGENT_KEYS)), yamlStyle).map(([doc, style]) => ({ text: toYaml(doc, style) })) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...YAML_TOKENS, ...AGENT_KEYS), { maxLength: 16 }).map((t) => ({ text: t.join('') })) },
);

function checkAgentConfig(c: AgentConfig): void {
  check(typeof c.controller.host === 'string' && c.controller.host !== '' && Number.isInteger(c.controller.port) && c.controller.port >= 1 && c.controller.port <= 65535, `controller ${JSON.stringify(c.controller)}`);
  check(typeof c.token === 'string' && typeof c.name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(c.name), `name ${c.name}`);
  for (const [k, v] of Object.entries(c.labels)) check(typeof v === 'string' && k !== '', `label ${k}=${String(v)}`);
  check(isAbsolute(c.dataDir), 'data dir is not absolute');
  for (const p of [c.peerPort, c.httpPort]) check(Number.isInteger(p) && p >= 0 && p <= 65535, `port ${p}`);
  for (const r of [c.uploadRateLimit, c.downloadRateLimit]) check(typeof r === 'number' && r > 0 && !Number.isNaN(r), `rate ${r}`);
  check(Number.isInteger(c.keepVersions) && c.keepVersions >= 1 && c.keepVersions <= 1000, `keepVersions ${c.keepVersions}`);
  check(typeof c.seedSeconds === 'number' && c.seedSeconds >= 0 && !Number.isNaN(c.seedSeconds), `seedSeconds ${c.seedSeconds}`);
  check(c.onPublish === undefined || typeof c.onPublish === 'string', 'onPublish');
  check(Array.isArray(c.trustedKeys) && typeof c.allowUnsigned === 'boolean' && (c.trustedKeys.length > 0 || c.allowUnsigned), 'no trusted key and not told to run unsigned');
  for (const k of c.trustedKeys) check(k.publicKey.asymmetricKeyType === 'ed25519' && k.publicKey.type === 'public' && /^[0-9a-f]{16}$/.test(k.keyId), `trusted key ${k.keyId}`);
}

function checkAgentSpec(c: AgentConfig, s: AgentSpec): void {
  check(c.token === s.token && c.name === s.name && c.peerPort === s.peerPort && c.httpPort === s.httpPort && c.keepVersions === s.keepVersions && c.onPublish === s.onPublish, 'a setting differs from the file');
  const labels = typeof s.labels === 'string' ? Object.fromEntries(s.labels.split(',').map((p) => p.split('=') as [string, string])) : s.labels;
  check(JSON.stringify(Object.entries(c.labels).sort()) === JSON.stringify(Object.entries(labels).sort()), 'labels differ from the file');
  const trusted = s.trustKeys === undefined ? 0 : Array.isArray(s.trustKeys) ? s.trustKeys.length : s.trustKeys.split('-----BEGIN').length - 1;
  check(c.trustedKeys.length === trusted, `${c.trustedKeys.length} trusted keys, the file gives ${trusted}`);
}

export const agentConfigTarget: FuzzTarget<ConfigInput> = {
  name: 'agent-config',
  about: 'parseConfigFile, resolveAgentConfig (YAML)',
  arbitrary: agentInput,
  setup: () => {
    // No flags or environment, so the file alone decides. Release signing needs a trusted
    // key or leave to run unsigned: given as a flag. Relative paths resolve in an empty directory.
    const cwd = mkdtempSync(join(tmpdir(), 'swarmship-fuzz-'));
    const sources = { flags: { allowUnsigned: true } as RawSettings, env: {}, cwd };
    return {
      check({ text, valid }: ConfigInput): Outcome {
        const file = expectTyped(() => parseConfigFile(text, 'agent.yaml'), AgentConfigError);
        if ('rejected' in file) {
          check(valid === undefined, () => `a valid agent config was refused: ${file.message}`);
          return file.rejected;
        }
        const config = expectTyped(() => resolveAgentConfig({ ...sources, file: file.value, fileName: 'agent.yaml' }), AgentConfigError);
        if ('rejected' in config) {
          check(valid === undefined, () => `a valid agent config was refused: ${config.message}`);
          return config.rejected;
        }
        checkAgentConfig(config.value);
        if (valid) checkAgentSpec(config.value, valid);
        return 'accepted';
      },
      close: () => rmSync(cwd, { recursive: true, force: true }),
    };
  },
};

// ---- controller --------------------------------------------------------------------------

// Every setting the controller's file may hold (libs/controller-core/src/config.ts SETTINGS).
const CONTROLLER_KEYS = [
  'dataDir', 'host', 'port', 'agentPort', 'peerPort', 'publicHost', 'originUploadLimit', 'superSeed', 'retireGraceSeconds', 'agentTimeoutSeconds',
  'agentForgetSeconds', 'pathRoots', 'httpHeadersTimeoutSeconds', 'httpIdleTimeoutSeconds', 'logFormat', 'token', 'agentToken', 'signingKeyFile',
];

const controllerSpec = fc
  .record({
    dataDir: fc.constantFrom('/var/lib/swarmship', 'data'),
    host: fc.oneof(fc.ipV4(), fc.constantFrom('0.0.0.0', '::', '127.0.0.1')),
    port: fc.integer({ min: 0, max: 65535 }),
    agentPort: fc.integer({ min: 0, max: 65535 }),
    peerPort: fc.integer({ min: 0, max: 65535 }),
    publicHost: fc.oneof(fc.ipV4(), fc.constantFrom('ctl.example.com', 'fd00::5', 'origin')),
    originUploadLimit: rate,
    superSeed: fc.oneof(fc.boolean(), fc.constantFrom('yes', 'off')),
    retireGraceSeconds: fc.integer({ min: 0, max: 30 * 86_400 }),
    agentTimeoutSeconds: fc.integer({ min: 30, max: 600 }),
    // Longer than any timeout above, or left to its default.
    agentForgetSeconds: fc.option(fc.integer({ min: 601, max: 30 * 86_400 }), { nil: undefined }),
    httpHeadersTimeoutSeconds: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
    httpIdleTimeoutSeconds: fc.option(fc.integer({ min: 1, max: 86_400 }), { nil: undefined }),
    signingKeyFile: fc.constantFrom(undefined, '/etc/swarmship/signing-key.pem', 'keys/signing.pem'),
    pathRoots: fc.oneof(fc.array(fc.constantFrom('/srv/artifacts', '/data', 'rel'), { minLength: 1, maxLength: 2 }), fc.constant('/srv/a,/srv/b')),
    logFormat: fc.constantFrom('auto', 'json', 'text'),
    token: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
    agentToken: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
  })
  .filter((s) => new Set([s.port, s.agentPort, s.peerPort].filter((p) => p !== 0)).size === [s.port, s.agentPort, s.peerPort].filter((p) => p !== 0).length);

type ControllerSpec = typeof controllerSpec extends fc.Arbitrary<infer T> ? T : never;
type ControllerInput = { text: string; valid?: ControllerSpec };

const validControllerYaml = fc.tuple(controllerSpec, yamlStyle).map(([spec, style]) => ({ text: toYaml(spec, style), valid: spec }));

const controllerInput: fc.Arbitrary<ControllerInput> = fc.oneof(
  { weight: 1, arbitrary: validControllerYaml },
  { weight: 4, arbitrary: mutatedText(validControllerYaml.map((v) => v.text), YAML_TOKENS).map((text) => ({ text })) },
  { weight: 3, arbitrary: fc.tuple(mutatedTree(controllerSpec as fc.Arbitrary<Tree>, configLeaf, configKeyOf(CONTROLLER_KEYS)), yamlStyle).map(([doc, style]) => ({ text: toYaml(doc, style) })) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...YAML_TOKENS, ...CONTROLLER_KEYS), { maxLength: 16 }).map((t) => ({ text: t.join('') })) },
);

function checkControllerConfig(c: ControllerConfig): void {
  check(isAbsolute(c.dataDir) && c.pathRoots.every(isAbsolute), 'paths are not absolute');
  const ports = [c.port, c.agentPort, c.peerPort];
  for (const p of ports) check(Number.isInteger(p) && p >= 0 && p <= 65535, `port ${p}`);
  const used = ports.filter((p) => p !== 0);
  check(new Set(used).size === used.length, 'two services on one port');
  check(typeof c.host === 'string' && c.host !== '' && typeof c.publicHost === 'string' && c.publicHost !== '', 'host or publicHost');
  check(typeof c.originUploadLimit === 'number' && c.originUploadLimit >= 16 * 1024 && !Number.isNaN(c.originUploadLimit), `originUploadLimit ${c.originUploadLimit}`);
  check(typeof c.superSeed === 'boolean', 'superSeed');
  check(Number.isInteger(c.retireGraceSeconds) && c.retireGraceSeconds >= 0 && Number.isInteger(c.agentTimeoutSeconds) && c.agentTimeoutSeconds >= 2 && c.agentForgetSeconds > c.agentTimeoutSeconds, 'grace or timeouts');
  check(['auto', 'json', 'text'].includes(c.logFormat), 'logFormat');
  for (const t of [c.token, c.agentToken]) check(t === '' || (t.length >= 16 && !/\s/.test(t)), 'token');
  check(Number.isInteger(c.httpHeadersTimeoutSeconds) && c.httpHeadersTimeoutSeconds >= 1 && c.httpHeadersTimeoutSeconds <= 600, `httpHeadersTimeoutSeconds ${c.httpHeadersTimeoutSeconds}`);
  check(Number.isInteger(c.httpIdleTimeoutSeconds) && c.httpIdleTimeoutSeconds >= 1 && c.httpIdleTimeoutSeconds <= 86_400, `httpIdleTimeoutSeconds ${c.httpIdleTimeoutSeconds}`);
  check(c.signingKeyFile === undefined || (typeof c.signingKeyFile === 'string' && isAbsolute(c.signingKeyFile)), 'signingKeyFile is not an absolute path');
}

export const controllerConfigTarget: FuzzTarget<ControllerInput> = {
  name: 'controller-config',
  about: 'loadControllerConfig (--config YAML file)',
  arbitrary: controllerInput,
  setup: () => {
    // In memory where the system has it: the target writes a file per case.
    const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'swarmship-fuzz-'));
    const file = join(dir, 'controller.yaml');
    return {
      async check({ text, valid }: ControllerInput): Promise<Outcome> {
        writeFileSync(file, text);
        const config = await expectTypedAsync(() => loadControllerConfig({ flags: { config: file }, env: {}, cwd: dir }), ConfigError);
        if ('rejected' in config) {
          check(valid === undefined, () => `a valid controller config was refused: ${config.message}`);
          return config.rejected;
        }
        checkControllerConfig(config.value);
        if (valid) {
          const c = config.value;
          check(c.host === valid.host && c.port === valid.port && c.agentPort === valid.agentPort && c.publicHost === valid.publicHost && c.token === valid.token, 'a setting differs from the file');
          check(
            (valid.agentForgetSeconds === undefined || c.agentForgetSeconds === valid.agentForgetSeconds) &&
              (valid.httpHeadersTimeoutSeconds === undefined || c.httpHeadersTimeoutSeconds === valid.httpHeadersTimeoutSeconds) &&
              (valid.httpIdleTimeoutSeconds === undefined || c.httpIdleTimeoutSeconds === valid.httpIdleTimeoutSeconds) &&
              (valid.signingKeyFile === undefined) === (c.signingKeyFile === undefined),
            'a timeout or the signing key differs from the file',
          );
        }
        return 'accepted';
      },
      close: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};
