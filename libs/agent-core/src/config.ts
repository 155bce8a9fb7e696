import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BYTE_RATE_EXAMPLES, parseByteRate } from '../../contracts/src/rate.js';
import { parsePublicKeys, SigningKeyError, type TrustedKey } from '../../signing/src/keys.js';

/** Everything an agent is told at start-up, validated and typed. */
export interface AgentConfig {
  /** The controller's agent channel (TCP transport of @nestjs/microservices). */
  controller: { host: string; port: number };
  /** Shared secret the controller checks on every call; empty when it asks for none. */
  token: string;
  name: string;
  labels: Record<string, string>;
  dataDir: string;
  /** Where peers reach our engine. */
  peerPort: number;
  /** Address the engine and the HTTP endpoints listen on; undefined is every interface. */
  listenHost: string | undefined;
  /** The address other nodes should dial, sent to the controller first in the list. */
  advertiseAddress: string;
  /** Bytes per second; Infinity is unlimited. */
  uploadRateLimit: number;
  downloadRateLimit: number;
  /** Published versions of one artifact kept on disk at most (desired ones are never removed for it). */
  keepVersions: number;
  /** Seconds to keep seeding a release after it is published; Infinity is for as long as it is held. */
  seedSeconds: number;
  /** Port of /metrics, /healthz, /readyz. */
  httpPort: number;
  /** Shell command run in a release's directory after it is published, if any. */
  onPublish: string | undefined;
  /** Public keys a release's manifest must be signed with (any one of them). */
  trustedKeys: TrustedKey[];
  /** Accept releases that carry no signed manifest; with no trusted key, check none. */
  allowUnsigned: boolean;
  /** Write downloaded pieces through the page cache instead of past it (direct I/O). */
  pageCache: boolean;
}

/** A setting with a bad value; the message names the setting as the user gave it. */
export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
  constructor(readonly setting: string, message: string) {
    super(`${setting}: ${message}`);
  }
}

/** Where a setting can come from, highest precedence first. */
interface SettingSpec {
  key: keyof RawSettings;
  flag: string;
  env: string;
  /** Key in the YAML file. */
  yaml: string;
}

/** Settings as given, before validation: text from flags and environment, anything from YAML. */
export interface RawSettings {
  controller?: unknown;
  token?: unknown;
  name?: unknown;
  labels?: unknown;
  data?: unknown;
  peerPort?: unknown;
  listenHost?: unknown;
  advertiseAddress?: unknown;
  uploadLimit?: unknown;
  downloadLimit?: unknown;
  keepVersions?: unknown;
  seedFor?: unknown;
  httpPort?: unknown;
  onPublish?: unknown;
  /** Paths of PEM files, or PEM text; a list from repeated flags or YAML. */
  trustKeys?: unknown;
  allowUnsigned?: unknown;
  pageCache?: unknown;
}

const SPECS: SettingSpec[] = [
  { key: 'controller', flag: '--controller', env: 'SWARMSHIP_CONTROLLER', yaml: 'controller' },
  { key: 'token', flag: '--token', env: 'SWARMSHIP_AGENT_TOKEN', yaml: 'token' },
  { key: 'name', flag: '--name', env: 'SWARMSHIP_NODE_NAME', yaml: 'name' },
  { key: 'labels', flag: '--labels', env: 'SWARMSHIP_LABELS', yaml: 'labels' },
  { key: 'data', flag: '--data', env: 'SWARMSHIP_DATA', yaml: 'data' },
  { key: 'peerPort', flag: '--peer-port', env: 'SWARMSHIP_PEER_PORT', yaml: 'peerPort' },
  { key: 'listenHost', flag: '--listen-host', env: 'SWARMSHIP_LISTEN_HOST', yaml: 'listenHost' },
  { key: 'advertiseAddress', flag: '--advertise-address', env: 'SWARMSHIP_ADVERTISE_ADDRESS', yaml: 'advertiseAddress' },
  { key: 'uploadLimit', flag: '--upload-limit', env: 'SWARMSHIP_UPLOAD_LIMIT', yaml: 'uploadLimit' },
  { key: 'downloadLimit', flag: '--download-limit', env: 'SWARMSHIP_DOWNLOAD_LIMIT', yaml: 'downloadLimit' },
  { key: 'keepVersions', flag: '--keep', env: 'SWARMSHIP_KEEP_VERSIONS', yaml: 'keepVersions' },
  { key: 'seedFor', flag: '--seed-for', env: 'SWARMSHIP_SEED_FOR', yaml: 'seedFor' },
  { key: 'httpPort', flag: '--http-port', env: 'SWARMSHIP_HTTP_PORT', yaml: 'httpPort' },
  { key: 'onPublish', flag: '--on-publish', env: 'SWARMSHIP_ON_PUBLISH', yaml: 'onPublish' },
  { key: 'trustKeys', flag: '--trust-key', env: 'SWARMSHIP_TRUST_KEY', yaml: 'trustKeys' },
  { key: 'allowUnsigned', flag: '--allow-unsigned', env: 'SWARMSHIP_ALLOW_UNSIGNED', yaml: 'allowUnsigned' },
  { key: 'pageCache', flag: '--page-cache', env: 'SWARMSHIP_PAGE_CACHE', yaml: 'pageCache' },
];

/** The agent channel's default: a controller on the same machine. */
export const DEFAULT_CONTROLLER = 'tcp://127.0.0.1:7071';
export const DEFAULT_DATA_DIR = './.swarmship/agent';
export const DEFAULT_PEER_PORT = 6881;
export const DEFAULT_HTTP_PORT = 9465;
/**
 * Where a controller started with its defaults in the same directory keeps its public
 * key; trusted when no key is given and the controller is on this machine (as the CLI
 * finds that controller's API token).
 */
export const LOCAL_CONTROLLER_PUBLIC_KEY = join('.swarmship', 'controller', 'signing-key.pub.pem');

/** The YAML file's text parsed into settings; a syntax error or unknown key names itself. */
export function parseConfigFile(text: string, path: string): RawSettings {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new AgentConfigError(path, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new AgentConfigError(path, 'expected a mapping of settings at the top level');
  const out: RawSettings = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const spec = SPECS.find((s) => s.yaml === k);
    if (!spec) throw new AgentConfigError(`${path}: ${k}`, `unknown setting; known ones are ${SPECS.map((s) => s.yaml).join(', ')}`);
    out[spec.key] = v;
  }
  return out;
}

/**
 * Settings from flags, then `SWARMSHIP_*` variables, then the YAML file, then the
 * defaults; every value is checked, and the first bad one throws an error naming the
 * flag, variable or file key it came from.
 */
export function resolveAgentConfig(sources: { flags: RawSettings; env: NodeJS.ProcessEnv; file?: RawSettings; fileName?: string; cwd?: string }): AgentConfig {
  const cwd = sources.cwd ?? process.cwd();
  const pick = (key: keyof RawSettings): { value: unknown; from: string } | undefined => {
    const spec = SPECS.find((s) => s.key === key)!;
    if (sources.flags[key] !== undefined) return { value: sources.flags[key], from: spec.flag };
    const env = sources.env[spec.env];
    if (env !== undefined && env !== '') return { value: env, from: spec.env };
    if (sources.file?.[key] !== undefined && sources.file[key] !== null) return { value: sources.file[key], from: `${sources.fileName ?? 'config file'}: ${spec.yaml}` };
    return undefined;
  };
  const text = (key: keyof RawSettings, fallback: string): { value: string; from: string } => {
    const got = pick(key);
    if (!got) return { value: fallback, from: SPECS.find((s) => s.key === key)!.flag };
    if (typeof got.value !== 'string' && typeof got.value !== 'number') throw new AgentConfigError(got.from, `expected text, got ${describeValue(got.value)}`);
    return { value: String(got.value).trim(), from: got.from };
  };

  const controller = text('controller', DEFAULT_CONTROLLER);
  const name = text('name', hostname());
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name.value)) throw new AgentConfigError(name.from, `"${name.value}" is not a node name (letters, digits, '.', '_', '-')`);
  const labelsRaw = pick('labels');
  const peerPort = port(text('peerPort', String(DEFAULT_PEER_PORT)));
  const listenHost = text('listenHost', '').value || undefined;
  const advertise = text('advertiseAddress', '').value || defaultAdvertiseAddress(listenHost);
  const keep = text('keepVersions', '2');
  const keepVersions = Number(keep.value);
  if (!Number.isInteger(keepVersions) || keepVersions < 1 || keepVersions > 1000) throw new AgentConfigError(keep.from, `expected a whole number from 1 to 1000, got "${keep.value}"`);
  const onPublish = text('onPublish', '').value || undefined;
  const controllerAddress = parseControllerUrl(controller.value, controller.from);
  const allowUnsigned = pick('allowUnsigned');
  const trust = trustedKeys(pick('trustKeys'), controllerAddress.host, cwd);
  const unsigned = allowUnsigned ? parseBool(allowUnsigned.value, allowUnsigned.from) : false;
  if (trust.length === 0 && !unsigned) throw new AgentConfigError('--trust-key', NO_TRUSTED_KEY);
  const pageCache = pick('pageCache');
  return {
    controller: controllerAddress,
    token: text('token', '').value,
    name: name.value,
    labels: labelsRaw ? parseLabels(labelsRaw.value, labelsRaw.from) : {},
    dataDir: resolve(cwd, text('data', DEFAULT_DATA_DIR).value),
    peerPort,
    listenHost,
    advertiseAddress: advertise,
    uploadRateLimit: parseRate(text('uploadLimit', '0')),
    downloadRateLimit: parseRate(text('downloadLimit', '0')),
    keepVersions,
    seedSeconds: parseDuration(text('seedFor', 'forever')),
    httpPort: port(text('httpPort', String(DEFAULT_HTTP_PORT))),
    onPublish,
    trustedKeys: trust,
    allowUnsigned: unsigned,
    pageCache: pageCache ? parseBool(pageCache.value, pageCache.from) : false,
  };
}

const NO_TRUSTED_KEY =
  "no key to verify releases with. Give the controller's public key with --trust-key FILE (or SWARMSHIP_TRUST_KEY, or trustKeys in the config file): " +
  "the controller writes it to <its data dir>/signing-key.pub.pem, prints it with 'swarmship controller --print-public-key' and serves it at GET /api/v1/signing-key. " +
  '--allow-unsigned runs without checking signatures (not recommended)';

/**
 * The keys release manifests must be signed with: every --trust-key (a PEM file, or PEM
 * text), SWARMSHIP_TRUST_KEY (PEM text, or comma-separated files) or `trustKeys` (a file,
 * PEM text, or a list of them). With none given and a controller on this machine, the
 * public key a controller started here with its defaults wrote.
 */
function trustedKeys(given: { value: unknown; from: string } | undefined, controllerHost: string, cwd: string): TrustedKey[] {
  const load = (item: unknown, from: string, splitPaths: boolean): TrustedKey[] => {
    if (typeof item !== 'string' || item.trim() === '') throw new AgentConfigError(from, 'expected a PEM file or PEM text');
    if (item.includes('-----BEGIN')) return keysFrom(item, from);
    const paths = splitPaths ? item.split(',').map((p) => p.trim()).filter(Boolean) : [item.trim()];
    return paths.flatMap((p) => {
      const path = resolve(cwd, p);
      let pem: string;
      try {
        pem = readFileSync(path, 'utf8');
      } catch (err) {
        throw new AgentConfigError(from, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      return keysFrom(pem, `${from} ${path}`);
    });
  };
  if (given) {
    const items = Array.isArray(given.value) ? (given.value as unknown[]) : [given.value];
    return items.flatMap((item) => load(item, given.from, given.from === 'SWARMSHIP_TRUST_KEY'));
  }
  if (!isLoopback(controllerHost)) return [];
  const local = resolve(cwd, LOCAL_CONTROLLER_PUBLIC_KEY);
  let pem: string;
  try {
    pem = readFileSync(local, 'utf8');
  } catch {
    return [];
  }
  return keysFrom(pem, local);
}

function keysFrom(pem: string, from: string): TrustedKey[] {
  try {
    return parsePublicKeys(pem, from);
  } catch (err) {
    if (err instanceof SigningKeyError) throw new AgentConfigError(from, err.message.startsWith(`${from}: `) ? err.message.slice(from.length + 2) : err.message);
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function parseBool(value: unknown, from: string): boolean {
  if (value === true || value === false) return value;
  if (typeof value !== 'string') throw new AgentConfigError(from, 'expected true or false');
  const t = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new AgentConfigError(from, `expected true or false, got "${value}"`);
}

/**
 * The agent channel's address: `tcp://host:port` (the scheme may be left out;
 * `[v6]:port` for IPv6). TCP is the one transport the agent speaks today.
 */
export function parseControllerUrl(text: string, from: string): { host: string; port: number } {
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/[\]\s]+):(\d+)\/?$/.exec(text);
  if (!m) throw new AgentConfigError(from, `"${text}" is not an agent channel address; expected tcp://host:port`);
  if (m[1] !== undefined && m[1] !== 'tcp') throw new AgentConfigError(from, `"${m[1]}://" is not supported; the agent channel is tcp://host:port`);
  const p = Number(m[3]);
  if (!(p >= 1 && p <= 65535)) throw new AgentConfigError(from, `port ${m[3]} is out of range 1-65535`);
  return { host: m[2]!.replace(/^\[|\]$/g, ''), port: p };
}

function port(v: { value: string; from: string }): number {
  const n = Number(v.value);
  if (v.value === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new AgentConfigError(v.from, `expected a port number 0-65535, got "${v.value}"`);
  return n;
}

/** `k=v,k2=v2` (flags, environment) or a YAML mapping. Keys and values as Kubernetes labels allow. */
export function parseLabels(value: unknown, from: string): Record<string, string> {
  const entries: [string, string][] = [];
  if (typeof value === 'string') {
    for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new AgentConfigError(from, `"${part}" is not a label; expected key=value`);
      entries.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
    }
  } else if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      // String() of a YAML mapping such as {toString: 1} throws; a nested value is no label anyway.
      if (typeof v === 'object' && v !== null) throw new AgentConfigError(from, `label ${k}: expected text, got ${describeValue(v)}`);
      entries.push([k, String(v)]);
    }
  } else {
    throw new AgentConfigError(from, 'expected key=value,… or a mapping');
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!/^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(k)) throw new AgentConfigError(from, `"${k}" is not a valid label key`);
    if (!/^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(v)) throw new AgentConfigError(from, `"${v}" is not a valid value for label ${k}`);
    labels[k] = v;
  }
  return labels;
}

/** A rate as every command spells it (see parseByteRate); 0 or unlimited is no cap. */
function parseRate(v: { value: string; from: string }): number {
  const rate = parseByteRate(v.value);
  if (rate === undefined) throw new AgentConfigError(v.from, `expected a rate per second such as ${BYTE_RATE_EXAMPLES}, got "${v.value}"`);
  return rate;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `forever`, or a number with s, m, h or d (`90s`, `12h`). */
function parseDuration(v: { value: string; from: string }): number {
  if (v.value === 'forever') return Infinity;
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(v.value);
  if (!m) throw new AgentConfigError(v.from, `expected "forever" or a duration such as 90s, 30m, 12h, got "${v.value}"`);
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

/**
 * A YAML value named in an error message. Never throws: JSON.stringify does on a document
 * whose aliases make a cycle (`a: &x [*x]`), String() on a mapping like {toString: 1}.
 */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (v instanceof Date) return 'a timestamp';
  if (typeof v === 'object' && v !== null) return 'a mapping';
  return String(v);
}

/** The listen address if it is a specific one, else the first external IPv4 address, else loopback. */
function defaultAdvertiseAddress(listenHost: string | undefined): string {
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
