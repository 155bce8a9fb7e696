/**
 * Fault scenario 4: the controller down in the middle of a rollout (30 s under
 * `npm run test:faults`, 8 s inside `npm test`), then started again on the same data dir
 * and ports. A controller (its origin upload capped) and four agents (their uploads
 * capped too, so they still have pieces to trade when it goes) as real processes; a
 * small release rolled out before, a larger one under way when the controller is
 * killed (SIGKILL on odd runs, SIGTERM on even ones: a crash and a maintenance stop).
 *
 * While it is down, the agents must go on trading pieces among themselves (their
 * /metrics count bytes from peers). After the restart every agent completes, each copy
 * is the artifact byte for byte, `swarmship status` reports the rollout complete with no
 * failure, and `swarmship releases ls` still lists every release.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReleaseStatus } from '../../libs/contracts/src/rest.js';
import { parsePrometheus, startAgentProcess, type AgentUnderTest } from '../helpers/agent-process.js';
import { startCli } from '../helpers/cli.js';
import { AGENT_TOKEN, API_TOKEN, startControllerProcess, tempDataDir, type ControllerUnderTest } from '../helpers/controller-process.js';
import { MIB, writeArtifact } from '../helpers/swarm.js';
import { apiGet, compareCopy, sleep, until } from './checks.js';
import { faultRuns, recordFaultRun } from './record.js';

const FULL = process.env.SWARMSHIP_FAULTS_FULL === '1';
const RUNS = faultRuns(3, 1);
const DOWN_MS = FULL ? 30_000 : 8_000;
const AGENTS = 4;
const SIZE = 32 * MIB;
const SMALL = 2 * MIB;
const ORIGIN_LIMIT = '4MB';
const AGENT_UPLOAD_LIMIT = '1MB';
const SCENARIO = '4-controller-down';
const TITLE = `Controller down ${DOWN_MS / 1000} s in the middle of a rollout, then restarted`;

/**
 * `count` distinct ports, each free now and outside the kernel's ephemeral range, so no
 * outgoing connection of another process can be given one while the controller is down.
 */
async function stablePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < 50 * count && ports.size < count; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (ports.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) ports.add(port);
  }
  if (ports.size < count) throw new Error(`no ${count} free ports in 20000–31999 after ${50 * count} tries`);
  return [...ports];
}

/** What the agents received so far from each other, or from the origin, all together. */
async function receivedBytes(agents: AgentUnderTest[], source: 'peer' | 'origin'): Promise<number> {
  let sum = 0;
  for (const a of agents) sum += parsePrometheus(await a.metrics()).get(`swarmship_agent_received_bytes_total{source="${source}"}`) ?? NaN;
  return sum;
}

function cliJson<T>(args: string[], base: string): Promise<T> {
  const p = startCli([...args, '--url', base, '--token', API_TOKEN, '--json']);
  return p.exited.then((code) => {
    if (code !== 0) throw new Error(`swarmship ${args.join(' ')} exited ${code}: ${p.stderr()}`);
    return JSON.parse(p.stdout()) as T;
  });
}

describe(`fault 4: the controller down ${DOWN_MS / 1000} s in the middle of a rollout`, () => {
  let cleanup: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    cleanup = [];
  });

  for (let run = 1; run <= RUNS; run++) {
    const signal: NodeJS.Signals = run % 2 === 1 ? 'SIGKILL' : 'SIGTERM';
    it(`run ${run} (${signal}): agents trade while it is down; afterwards every copy is whole, the status complete and no release lost`, { timeout: 300_000 }, async () => {
      const dir = await tempDataDir();
      cleanup.push(dir.remove);
      const artifact = join(dir.dir, 'app.bin');
      const small = join(dir.dir, 'base.bin');
      await writeArtifact(artifact, SIZE, `fault-controller-down-${run}`);
      await writeArtifact(small, SMALL, `fault-controller-down-base-${run}`);
      const [port, agentPort, peerPort] = (await stablePorts(3)).map(String) as [string, string, string];
      const ports = ['--port', port, '--agent-port', agentPort, '--peer-port', peerPort];
      const controllerArgs = ['--origin-upload-limit', ORIGIN_LIMIT, ...ports];
      const controllerDir = join(dir.dir, 'controller');
      let controller: ControllerUnderTest = await startControllerProcess(controllerDir, controllerArgs);
      cleanup.push(() => controller.stop());
      const agents = await Promise.all(
        Array.from({ length: AGENTS }, (_, i) =>
          startAgentProcess({ name: `node-${i + 1}`, dataDir: join(dir.dir, `node-${i + 1}`), controllerPort: controller.channel.port, token: AGENT_TOKEN, trustKeys: [controller.publicKeyFile], extra: ['--upload-limit', AGENT_UPLOAD_LIMIT] }),
        ),
      );
      cleanup.push(() => Promise.all(agents.map((a) => a.cli.stop())));
      await Promise.all(agents.map((a) => a.cli.waitFor((e) => e.event === 'controller-connected', 30_000)));

      // A release rolled out before the fault, which must still be listed after it.
      const base = startCli(['publish', small, '--name', 'base', '--version', String(run), '--wait', '--timeout', '120s', '--url', controller.base, '--token', API_TOKEN, '--json']);
      expect(await base.exited, base.stderr()).toBe(0);

      const publish = startCli(['publish', artifact, '--name', 'app', '--version', String(run), '--url', controller.base, '--token', API_TOKEN, '--json']);
      expect(await publish.exited, publish.stderr()).toBe(0);
      const status = () => apiGet<ReleaseStatus>(controller.api, `/releases/app/${run}`);
      // In the middle: the origin has sent a third of a copy, and nobody is done.
      const atFault = await until('the rollout to be under way', async () => {
        const s = await status();
        return s.rollout.originBytesSent >= SIZE / 3 ? s : undefined;
      }, 90_000, 50);
      expect(atFault.rollout.complete).toBe(0);

      controller.cli.child.kill(signal);
      await controller.cli.exited;
      const downAt = Date.now();
      const peerAtDown = await receivedBytes(agents, 'peer');
      await sleep(DOWN_MS - (Date.now() - downAt));
      const peerDuringDown = (await receivedBytes(agents, 'peer')) - peerAtDown;
      const originBeforeRestart = await receivedBytes(agents, 'origin');
      const doneWhileDown = agents.filter((a) => a.cli.events.some((e) => e.event === 'published' && e.release === `app/${run}`)).length;

      const restartAt = Date.now();
      controller = await startControllerProcess(controllerDir, controllerArgs);
      // How soon the agents fetch from the origin again (their reconnection backoff).
      const originBack = until('the agents to fetch from the restarted origin', async () => ((await receivedBytes(agents, 'origin')) > originBeforeRestart ? Date.now() : undefined), 120_000, 100).catch(() => undefined);
      const finished = await Promise.all(
        agents.map((a) =>
          a.cli.waitFor((e) => e.event === 'published' && e.release === `app/${run}`, 180_000).then(
            () => Date.now(),
            () => undefined,
          ),
        ),
      );
      const copies = await Promise.all(agents.map((a) => compareCopy(artifact, join(a.releaseDir('app', String(run)), 'app.bin'))));
      const bytesLost = copies.reduce((s, c) => s + c.lost, 0);
      const bytesCorrupted = copies.reduce((s, c) => s + c.corrupted, 0);
      const allDone = finished.every((t) => t !== undefined);
      const lastCopy = allDone ? Math.max(...(finished as number[])) : undefined;
      const originBackAt = await originBack;
      const originAgain = originBackAt !== undefined ? `${((originBackAt - restartAt) / 1000).toFixed(1)} s` : 'never';

      // What the controller says once it has heard from every agent again.
      let after: ReleaseStatus | undefined;
      let names: string[] = [];
      let statusError = '';
      try {
        after = await until('the restarted controller to report the rollout complete', async () => {
          const s = await cliJson<ReleaseStatus>(['status', `app@${run}`], controller.base);
          return s.rollout.complete === AGENTS ? s : undefined;
        }, 90_000, 500);
        names = (await cliJson<ReleaseStatus[]>(['releases', 'ls'], controller.base)).map((r) => `${r.name}@${r.version}`).sort();
      } catch (err) {
        statusError = (err as Error).message;
      }
      const statusRight =
        after !== undefined &&
        after.rollout.targeted === AGENTS &&
        after.rollout.failed === 0 &&
        after.rollout.timeTo100 !== null &&
        after.rollout.nodes.every((n) => n.state === 'complete' && n.verifiedBytes === SIZE) &&
        names.join(' ') === `app@${run} base@${run}`;
      await recordFaultRun({
        scenario: SCENARIO,
        title: TITLE,
        run,
        ok: allDone && bytesLost === 0 && bytesCorrupted === 0 && peerDuringDown > 0 && statusRight,
        bytesLost,
        bytesCorrupted,
        recoveryMs: lastCopy !== undefined ? lastCopy - restartAt : null,
        detail: `${signal}; agents traded ${(peerDuringDown / MIB).toFixed(1)} MiB among themselves while it was down, fetched from the origin again ${originAgain} after the restart${statusRight ? '' : '; status after the restart wrong'}`,
      });
      console.log(
        `fault 4 run ${run} (${signal}): down ${((restartAt - downAt) / 1000).toFixed(1)} s, agents traded ${(peerDuringDown / MIB).toFixed(1)} MiB meanwhile (${doneWhileDown} finished); ` +
          `origin fetched from again ${originAgain} and last copy ${lastCopy !== undefined ? ((lastCopy - restartAt) / 1000).toFixed(1) : '—'} s after the restart`,
      );
      for (const [i, a] of agents.entries()) {
        expect(finished[i], `${a.name} completes after the restart; its log:\n${a.cli.stdout().slice(-3000)}`).toBeDefined();
        expect(copies[i], `${a.name}'s copy`).toEqual({ corrupted: 0, lost: 0 });
      }
      expect(peerDuringDown, 'bytes the agents moved among themselves while the controller was down').toBeGreaterThan(0);
      expect(statusError).toBe('');
      expect(after!.rollout).toMatchObject({ targeted: AGENTS, complete: AGENTS, failed: 0, pending: 0, downloading: 0 });
      expect(after!.rollout.timeTo100).not.toBeNull();
      for (const n of after!.rollout.nodes) expect(n, n.agent).toMatchObject({ state: 'complete', verifiedBytes: SIZE });
      expect(names).toEqual([`app@${run}`, `base@${run}`]);
    });
  }
});
