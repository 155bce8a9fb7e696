export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of every numeric field across runs; other fields come from the first run. */
export function medianOf<T extends object>(runs: T[]): T {
  const rows = runs as unknown as Record<string, unknown>[];
  const out = { ...rows[0]! };
  for (const [key, value] of Object.entries(out)) {
    if (typeof value === 'number') out[key] = median(rows.map((r) => r[key] as number));
  }
  return out as unknown as T;
}

/** Plain-text table; numbers right-aligned so their digits line up, text columns left-aligned. */
export function table(header: string[], rows: string[][], textColumns: number[] = [0]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (textColumns.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}
