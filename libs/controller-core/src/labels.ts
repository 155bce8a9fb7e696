import { badRequest } from './errors.js';

/** Label keys and values as Kubernetes allows them, so node labels can be used as they are. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const MAX_METADATA_ENTRIES = 64;
const MAX_METADATA_VALUE = 1024;

/** An empty selector selects every node; otherwise every pair must be among the node's labels. */
export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** `k=v,k2=v2` or an object of strings, as a selector (label syntax enforced). */
export function parseSelector(value: unknown, field: string): Record<string, string> {
  const map = parsePairs(value, field);
  for (const [k, v] of Object.entries(map)) {
    if (!LABEL_KEY.test(k)) throw badRequest(field, `'${k}' is not a valid label key`);
    if (!LABEL_VALUE.test(v)) throw badRequest(field, `'${v}' is not a valid label value (for ${k})`);
  }
  return map;
}

/** Free-form string pairs attached to a release, bounded so a release record stays small. */
export function parseMetadata(value: unknown, field: string): Record<string, string> {
  const map = parsePairs(value, field);
  const entries = Object.entries(map);
  if (entries.length > MAX_METADATA_ENTRIES) throw badRequest(field, `at most ${MAX_METADATA_ENTRIES} entries`);
  for (const [k, v] of entries) {
    if (k === '' || k.length > 128) throw badRequest(field, `key '${k.slice(0, 20)}' must be 1 to 128 characters`);
    if (v.length > MAX_METADATA_VALUE) throw badRequest(field, `value of '${k}' is longer than ${MAX_METADATA_VALUE} characters`);
  }
  return map;
}

function parsePairs(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null || value === '') return {};
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (typeof value === 'string') {
    for (const part of value.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw badRequest(field, `'${part}' is not key=value`);
      const k = part.slice(0, eq).trim();
      if (k in out) throw badRequest(field, `'${k}' is given twice`);
      out[k] = part.slice(eq + 1).trim();
    }
    return { ...out };
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(field, 'expected an object of strings or key=value,…');
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw badRequest(field, `value of '${k}' must be a string`);
    out[k] = v;
  }
  return { ...out };
}

/** Release names and versions become directory names: one safe path element each. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

export function parseReleaseName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || value === '') throw badRequest(field, 'is required');
  if (!NAME.test(value)) throw badRequest(field, `'${value.slice(0, 40)}' must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return value;
}

export function parseReleaseVersion(value: unknown, field = 'version'): string {
  if (typeof value !== 'string' || value === '') throw badRequest(field, 'is required');
  if (!VERSION.test(value)) throw badRequest(field, `'${value.slice(0, 40)}' must be 1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit`);
  return value;
}

/** The file name an uploaded artifact is stored (and its torrent named) under. */
export function parseFileName(value: unknown, field = 'filename'): string {
  if (typeof value !== 'string' || value === '') throw badRequest(field, 'is required');
  if (value.length > 255 || value === '.' || value === '..' || /[/\\\0]/.test(value) || value.startsWith('.')) {
    throw badRequest(field, `'${value.slice(0, 40)}' must be a plain file name (no '/', not starting with '.')`);
  }
  return value;
}
