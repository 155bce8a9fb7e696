import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { BYTE_RATE_EXAMPLES, parseByteRate } from '../../contracts/src/rate.js';
import { writeFileAtomic } from '../../durable-files/src/atomic.js';

/** Everything the controller process needs to start, validated and typed. */
export interface ControllerConfig {
  /** Absolute path of the data dir (releases, tokens). */
  dataDir: string;
  /** Address the HTTP API and the agent channel listen on. */
  host: string;
  /** HTTP port: API, docs, tracker, metrics. 0 picks a free one. */
  port: number;
  /** Agent channel (TCP microservice) port. */
  agentPort: number;
  /** The origin engine's peer port. */
  peerPort: number;
  /** How agents and peers reach this controller: goes into announce URLs and the origin address. */
  publicHost: string;
  /** Origin upload cap in bytes per second; Infinity is unlimited. */
  originUploadLimit: number;
  /** Super-seed each new release until a full copy exists outside the origin. */
  superSeed: boolean;
  /** Seconds a retired release stays on agents before they delete it. */
  retireGraceSeconds: number;
  /** An agent not heard from for this long is lost: it no longer counts towards a rollout. */
  agentTimeoutSeconds: number;
  /** A lost agent not heard from for this long is forgotten: gone from the agent list. Default 3600, or twice the timeout if that is longer. */
  agentForgetSeconds: number;
  /** Paths a JSON publish may name: the path must lie under one of these. */
  pathRoots: string[];
  /** An HTTP client must send a request's headers within this many seconds. */
  httpHeadersTimeoutSeconds: number;
  /** An HTTP connection with no traffic for this many seconds is closed (a stalled upload too). */
  httpIdleTimeoutSeconds: number;
  logFormat: 'auto' | 'json' | 'text';
  token: string;
  agentToken: string;
  /** Where generated tokens were stored, when any were. */
  tokensFile: string | undefined;
  /**
   * PEM file of the Ed25519 key release manifests are signed with; undefined means
   * <data>/signing-key.pem, made at the first start (see `openSigningKey`).
   */
  signingKeyFile: string | undefined;
}

/** A setting that failed validation; the message starts with where it came from. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  /** Command-line flags by their long name (`agent-port`), as parsed. */
  flags?: Record<string, string | boolean | undefined>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

type Parser<T> = (text: string, where: string) => T;

interface Setting<K extends keyof ControllerConfig> {
  key: K;
  flag: string;
  env: string;
  parse: Parser<ControllerConfig[K]>;
  /** A default that works on one machine. */
  fallback: (cwd: string) => ControllerConfig[K];
}

const portNumber: Parser<number> = (text, where) => wholeNumber(text, where, 0, 65535);

const SETTINGS = [
  { key: 'dataDir', flag: 'data', env: 'SWARMSHIP_DATA', parse: nonEmpty, fallback: (cwd: string) => join(cwd, '.swarmship', 'controller') },
  { key: 'host', flag: 'host', env: 'SWARMSHIP_HOST', parse: address, fallback: () => '0.0.0.0' },
  { key: 'port', flag: 'port', env: 'SWARMSHIP_PORT', parse: portNumber, fallback: () => 7070 },
  { key: 'agentPort', flag: 'agent-port', env: 'SWARMSHIP_AGENT_PORT', parse: portNumber, fallback: () => 7071 },
  { key: 'peerPort', flag: 'peer-port', env: 'SWARMSHIP_PEER_PORT', parse: portNumber, fallback: () => 6881 },
  { key: 'publicHost', flag: 'public-host', env: 'SWARMSHIP_PUBLIC_HOST', parse: hostName, fallback: () => '127.0.0.1' },
  { key: 'originUploadLimit', flag: 'origin-upload-limit', env: 'SWARMSHIP_ORIGIN_UPLOAD_LIMIT', parse: byteRate, fallback: () => Infinity },
  { key: 'superSeed', flag: 'super-seed', env: 'SWARMSHIP_SUPER_SEED', parse: bool, fallback: () => true },
  { key: 'retireGraceSeconds', flag: 'retire-grace', env: 'SWARMSHIP_RETIRE_GRACE', parse: (t: string, w: string) => wholeNumber(t, w, 0, 30 * 86_400), fallback: () => 600 },
  // An agent waiting on a held sync counts as seen, so a timeout under the 25 s a sync is
  // held does not make live agents flap; a few seconds still allow for a slow round trip.
  { key: 'agentTimeoutSeconds', flag: 'agent-timeout', env: 'SWARMSHIP_AGENT_TIMEOUT', parse: (t: string, w: string) => wholeNumber(t, w, 2, 86_400), fallback: () => 120 },
  // 0 is never parsed (the minimum is 3): it stands for unset, resolved below from the timeout.
  { key: 'agentForgetSeconds', flag: 'agent-forget', env: 'SWARMSHIP_AGENT_FORGET', parse: (t: string, w: string) => wholeNumber(t, w, 3, 30 * 86_400), fallback: () => 0 },
  // Off unless named: with '/' anyone holding the API token could publish, and so fetch
  // from the origin, any file the controller can read (its tokens, a service account's).
  { key: 'pathRoots', flag: 'path-roots', env: 'SWARMSHIP_PATH_ROOTS', parse: pathList, fallback: () => [] },
  { key: 'httpHeadersTimeoutSeconds', flag: 'http-headers-timeout', env: 'SWARMSHIP_HTTP_HEADERS_TIMEOUT', parse: (t: string, w: string) => wholeNumber(t, w, 1, 600), fallback: () => 20 },
  { key: 'httpIdleTimeoutSeconds', flag: 'http-idle-timeout', env: 'SWARMSHIP_HTTP_IDLE_TIMEOUT', parse: (t: string, w: string) => wholeNumber(t, w, 1, 86_400), fallback: () => 120 },
  { key: 'logFormat', flag: 'log-format', env: 'SWARMSHIP_LOG_FORMAT', parse: logFormat, fallback: () => 'auto' as const },
  { key: 'token', flag: 'token', env: 'SWARMSHIP_TOKEN', parse: secret, fallback: () => '' },
  { key: 'agentToken', flag: 'agent-token', env: 'SWARMSHIP_AGENT_TOKEN', parse: secret, fallback: () => '' },
  { key: 'signingKeyFile', flag: 'signing-key', env: 'SWARMSHIP_SIGNING_KEY', parse: nonEmpty, fallback: () => undefined },
] satisfies Setting<keyof ControllerConfig>[];

/** The YAML file's keys are the config's own names (`agentPort`, `originUploadLimit`, …). */
const YAML_KEYS = new Set<string>(SETTINGS.map((s) => s.key));

/**
 * Reads the settings from flags, then SWARMSHIP_* variables, then the YAML file named by
 * --config or SWARMSHIP_CONFIG, then defaults; the first that sets a value wins. Does no
 * I/O beyond reading the YAML file; tokens are settled by `ensureTokens`.
 */
export async function loadControllerConfig(sources: ConfigSources = {}): Promise<ControllerConfig> {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const configPath = str(flags['config']) ?? env['SWARMSHIP_CONFIG'];
  const file = configPath ? await readYamlConfig(resolve(cwd, configPath)) : {};

  const out: Record<string, unknown> = {};
  for (const s of SETTINGS as Setting<keyof ControllerConfig>[]) {
    const flag = flags[s.flag];
    const fromFile = file[s.key];
    if (flag !== undefined) out[s.key] = s.parse(String(flag), `--${s.flag}`);
    else if (env[s.env] !== undefined && env[s.env] !== '') out[s.key] = s.parse(env[s.env]!, s.env);
    else if (fromFile !== undefined && fromFile !== null) out[s.key] = s.parse(fileText(fromFile, `${configPath}: ${s.key}`), `${configPath}: ${s.key}`);
    else out[s.key] = s.fallback(cwd);
  }
  const config = { ...out, tokensFile: undefined } as ControllerConfig;
  config.dataDir = resolve(cwd, config.dataDir);
  config.pathRoots = config.pathRoots.map((p) => resolve(cwd, p));
  if (config.signingKeyFile !== undefined) config.signingKeyFile = resolve(cwd, config.signingKeyFile);
  // By default an hour, and always well past the timeout.
  if (config.agentForgetSeconds === 0) config.agentForgetSeconds = Math.max(3600, 2 * config.agentTimeoutSeconds);
  if (config.agentForgetSeconds <= config.agentTimeoutSeconds) {
    throw new ConfigError(`agentForgetSeconds (${config.agentForgetSeconds}) must be longer than agentTimeoutSeconds (${config.agentTimeoutSeconds}): an agent is lost before it is forgotten`);
  }
  const ports: [string, number][] = [['port', config.port], ['agentPort', config.agentPort], ['peerPort', config.peerPort]];
  for (const [a, pa] of ports) {
    for (const [b, pb] of ports) {
      if (a < b && pa !== 0 && pa === pb) throw new ConfigError(`${a} and ${b} are both ${pa}: each needs its own port`);
    }
  }
  return config;
}

async function readYamlConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path}: expected a mapping of settings`);
  for (const k of Object.keys(doc)) {
    if (!YAML_KEYS.has(k)) throw new ConfigError(`config file ${path}: unknown setting '${k}' (known: ${[...YAML_KEYS].join(', ')})`);
  }
  return doc as Record<string, unknown>;
}

const TOKENS_FILE = 'tokens.yaml';

/**
 * Fills in tokens the operator did not set: from <data>/tokens.yaml if an earlier start
 * wrote one, else fresh random ones written there (mode 0600), so a first start on one
 * machine needs no setup and a restart keeps the tokens agents already hold.
 */
export async function ensureTokens(config: ControllerConfig): Promise<ControllerConfig> {
  if (config.token && config.agentToken) return config;
  const path = join(config.dataDir, TOKENS_FILE);
  let stored: { token?: unknown; agentToken?: unknown } = {};
  try {
    stored = (parseYaml(await readFile(path, 'utf8')) ?? {}) as typeof stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  const token = config.token || (typeof stored.token === 'string' && stored.token ? stored.token : randomToken());
  const agentToken = config.agentToken || (typeof stored.agentToken === 'string' && stored.agentToken ? stored.agentToken : randomToken());
  if (stored.token !== token && !config.token || stored.agentToken !== agentToken && !config.agentToken) {
    await mkdir(config.dataDir, { recursive: true });
    const doc: Record<string, string> = {};
    if (!config.token) doc['token'] = token;
    if (!config.agentToken) doc['agentToken'] = agentToken;
    await writeFileAtomic(path, stringifyYaml(doc), 0o600);
  }
  // A file left readable by an older start or a careless copy is tightened, not trusted as is.
  await chmod(path, 0o600).catch(() => undefined);
  return { ...config, token, agentToken, tokensFile: path };
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * A YAML value as the text a flag would give: a scalar as written, a list of scalars
 * joined by commas. Anything else is refused here: String() throws on a mapping such as
 * {toString: 1}, and a nested value is no setting.
 */
function fileText(v: unknown, where: string): string {
  const scalar = (x: unknown) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
  if (scalar(v)) return String(v);
  if (Array.isArray(v) && v.every(scalar)) return v.join(',');
  throw new ConfigError(`${where}: expected text, a number, true or false, or a list of them`);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function nonEmpty(text: string, where: string): string {
  if (text.trim() === '') throw new ConfigError(`${where}: must not be empty`);
  return text;
}

function wholeNumber(text: string, where: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${where}: must be a whole number from ${min} to ${max}, got '${text}'`);
  return n;
}

function address(text: string, where: string): string {
  if (isIP(text) === 0) throw new ConfigError(`${where}: must be an IP address to listen on (0.0.0.0, ::, 127.0.0.1, …), got '${text}'`);
  return text;
}

function hostName(text: string, where: string): string {
  if (isIP(text) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(text)) return text;
  throw new ConfigError(`${where}: must be an IP address or a DNS name, got '${text}'`);
}

function bool(text: string, where: string): boolean {
  const t = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new ConfigError(`${where}: must be true or false, got '${text}'`);
}

function logFormat(text: string, where: string): ControllerConfig['logFormat'] {
  if (text === 'auto' || text === 'json' || text === 'text') return text;
  throw new ConfigError(`${where}: must be auto, json or text, got '${text}'`);
}

function secret(text: string, where: string): string {
  // The message never echoes the value: it is a secret, even when it is a bad one.
  if (text.length < 16) throw new ConfigError(`${where}: must be at least 16 characters`);
  if (/\s/.test(text)) throw new ConfigError(`${where}: must not contain whitespace`);
  return text;
}

function pathList(text: string, where: string): string[] {
  const list = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (list.length === 0) throw new ConfigError(`${where}: name at least one directory`);
  return list;
}

/** Bytes per second, as every command spells a rate (see parseByteRate); at least 16KiB, or no cap. */
export function byteRate(text: string, where: string): number {
  const parsed = parseByteRate(text);
  if (parsed === undefined) throw new ConfigError(`${where}: must be bytes per second like ${BYTE_RATE_EXAMPLES}, got '${text}'`);
  if (parsed === Infinity) return Infinity;
  const rate = Math.floor(parsed);
  if (rate < 16 * 1024) throw new ConfigError(`${where}: at least 16KiB per second, got '${text}'`);
  return rate;
}
