/**
 * Byte rates as every command spells them (the agent's --upload-limit and
 * --download-limit, the controller's --origin-upload-limit, seed and download), so the
 * same text means the same rate on every side.
 */

/** Bytes per second for each unit, lower case; `/s` may follow any of them. */
const BYTE_RATE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
  kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8,
};

/** For help texts and error messages. */
export const BYTE_RATE_EXAMPLES = '100MB, 64MiB, 800mbit; 0 or unlimited for no cap';

/**
 * Bytes per second from text such as `100MB`, `64MiB`, `800mbit`, `1.5g/s` (units
 * k/kb/m/mb/g/gb are powers of 1000, kib/mib/gib of 1024, kbit/mbit/gbit bits; no unit
 * is bytes; case and surrounding white space do not matter). `unlimited` and any zero
 * are Infinity: no cap. Undefined for text that is no rate.
 */
export function parseByteRate(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'unlimited') return Infinity;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?$/.exec(t);
  // Own keys only: "1constructor" must not find Object's constructor and make the rate NaN.
  if (!m || !Object.hasOwn(BYTE_RATE_UNITS, m[2]!)) return undefined;
  const rate = Number(m[1]) * BYTE_RATE_UNITS[m[2]!]!;
  return rate === 0 ? Infinity : rate;
}
