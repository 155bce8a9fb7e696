import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskStalled, diskStalledSeconds, machineCpu, machineDiskIos, type LinkTimeline, type MachineCpu } from '../bench/fleet/link-timeline.js';

// The fleet benchmark flags the steps when the disk every host shares completed nothing
// while tasks waited for it, so a slow run can be told from a slow product.

const cpu = (total: number, ioWait: number): MachineCpu => ({ busy: 0, total, ioWait });

describe('fleet benchmark: disk stalls', () => {
  it.skipIf(!existsSync('/proc/diskstats'))('counts the reads and writes the machine completes (needs /proc/diskstats)', () => {
    const before = machineDiskIos();
    // Beside the repository, which lives on a disk (the system's temporary directory may
    // be tmpfs, where nothing reaches a device).
    const dir = mkdtempSync(join(process.cwd(), '.disk-ios-'));
    try {
      // Written and flushed to the device, so at least one write completes.
      const fd = openSync(join(dir, 'f'), 'w');
      writeSync(fd, Buffer.alloc(1024 * 1024, 7));
      fsyncSync(fd);
      closeSync(fd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const after = machineDiskIos();
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(before);
    const now = machineCpu();
    expect(now.ioWait).toBeGreaterThanOrEqual(0);
    expect(now.ioWait).toBeLessThanOrEqual(now.total);
  });

  it('calls a step stalled only when tasks waited and nothing completed', () => {
    const at = (total: number, ioWait: number, diskIos: number) => ({ cpu: cpu(total, ioWait), diskIos });
    // Half the machine's time waiting on the disk, not one I/O done: stalled.
    expect(diskStalled(at(1000, 100, 5000), at(1050, 125, 5000))).toBe(true);
    // The same wait while I/O completes: a busy disk, not a stalled one.
    expect(diskStalled(at(1000, 100, 5000), at(1050, 125, 5001))).toBe(false);
    // Nothing completed, nobody waiting: an idle disk.
    expect(diskStalled(at(1000, 100, 5000), at(1050, 101, 5000))).toBe(false);
    // No time passed.
    expect(diskStalled(at(1000, 100, 5000), at(1000, 100, 5000))).toBe(false);
  });

  it('adds up the stalled steps up to a given time', () => {
    const timeline: LinkTimeline = {
      stepEndsSeconds: [0.25, 0.5, 0.75, 1.0, 1.25],
      hosts: [],
      cpuBusy: [0.5, 0.5, 0.1, 0.1, 0.5],
      diskStalled: [false, true, true, false, true],
    };
    expect(diskStalledSeconds(timeline)).toBeCloseTo(0.75);
    // A step the limit cuts counts only up to it; steps after it not at all.
    expect(diskStalledSeconds(timeline, 0.6)).toBeCloseTo(0.35);
    expect(diskStalledSeconds(timeline, 1.1)).toBeCloseTo(0.6);
  });
});
