/**
 * What the fault scenarios of agents and controllers share: comparing a node's copy
 * with the artifact byte for byte (how many bytes differ, how many are missing),
 * bounded waiting, a seeded random source for "random moments" that a failure can
 * replay, and the controller's REST API as the test reads it.
 */
import { open } from 'node:fs/promises';
import { API_TOKEN } from '../helpers/controller-process.js';

export interface CopyComparison {
  /** Bytes present in the copy that differ from the artifact. */
  corrupted: number;
  /** Bytes of the artifact the copy does not have (all of them when the file is absent). */
  lost: number;
}

const CHUNK = 1024 * 1024;

/** Compares `copy` with `artifact` byte for byte; a missing copy loses every byte. */
export async function compareCopy(artifact: string, copy: string): Promise<CopyComparison> {
  const a = await open(artifact, 'r');
  try {
    const size = (await a.stat()).size;
    const c = await open(copy, 'r').catch(() => undefined);
    if (!c) return { corrupted: 0, lost: size };
    try {
      const copySize = (await c.stat()).size;
      const common = Math.min(size, copySize);
      const bufA = Buffer.alloc(CHUNK);
      const bufC = Buffer.alloc(CHUNK);
      let corrupted = 0;
      for (let at = 0; at < common; at += CHUNK) {
        const n = Math.min(CHUNK, common - at);
        await a.read(bufA, 0, n, at);
        await c.read(bufC, 0, n, at);
        if (bufA.subarray(0, n).equals(bufC.subarray(0, n))) continue;
        for (let i = 0; i < n; i++) if (bufA[i] !== bufC[i]) corrupted++;
      }
      // Bytes past the artifact's end are published bytes that are not the artifact's.
      return { corrupted: corrupted + Math.max(0, copySize - size), lost: Math.max(0, size - copySize) };
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every `everyMs` until it returns a value, for at most `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
    await sleep(everyMs);
  }
}

/** mulberry32: a small seeded generator, so a failing run's moments can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for this file's random moments: SWARMSHIP_FAULT_SEED replays a run, else a fresh one. */
export function faultSeed(): number {
  const given = process.env.SWARMSHIP_FAULT_SEED;
  return given !== undefined && given !== '' ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32);
}

/** GET on the controller's REST API; throws on any status but 2xx. */
export async function apiGet<T>(api: string, path: string, token = API_TOKEN): Promise<T> {
  const res = await fetch(`${api}${path}`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
