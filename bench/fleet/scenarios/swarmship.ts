/**
 * swarmship as a user runs it: `swarmship controller` on the origin, `swarmship agent`
 * on every node, and the clock starts as `swarmship publish <artifact> --wait` is run on
 * the origin, so the upload to the controller and the torrent's creation are inside the
 * time. A node is done when its agent logs 'published' (every piece verified, the copy
 * renamed into place); the scenario is finished when `publish --wait` returns 0.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fmtBytes } from '../../lib/files.js';
import type { Child, Line } from '../../lib/proc.js';
import { copiesFromLines, withDeadline, type Scenario, type ScenarioContext } from '../scenario.js';

const API_PORT = 7070;
const AGENT_PORT = 7071;
const PEER_PORT = 6881;
const RELEASE_NAME = 'fleet-artifact';

/** `swarmship publish FILE --wait` against the origin's controller, as JSON. */
function publishArgs(ctx: ScenarioContext, file: string, name: string, version: string, timeoutSeconds: number): string[] {
  return [ctx.cli, 'publish', file, '--name', name, '--version', version, '--wait', '--timeout', `${timeoutSeconds}s`, '--url', `http://${ctx.net.origin.address}:${API_PORT}`, '--json'];
}

/**
 * Extra node options for every agent (FLEET_AGENT_NODE_ARGS) or for the controller
 * (FLEET_CONTROLLER_NODE_ARGS), e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof/{host}' (node
 * refuses --cpu-prof in NODE_OPTIONS); `{host}` becomes the host's name.
 */
function extraNodeArgs(variable: 'FLEET_AGENT_NODE_ARGS' | 'FLEET_CONTROLLER_NODE_ARGS', host: string): string[] {
  const raw = process.env[variable]?.trim();
  return raw ? raw.split(/\s+/).map((a) => a.replaceAll('{host}', host).replaceAll('{node}', host)) : [];
}

export interface SwarmshipFleetScenario extends Scenario {
  /** A node's agent process once setup() has started it, e.g. to time a fault by its log. */
  agent(node: string): Child | undefined;
}

export interface SwarmshipFleetOptions {
  /**
   * Bytes of a release shipped to the whole fleet during setup (untimed), so that the
   * timed release meets a controller and agents that have shipped before, as they have
   * in service, rather than processes started a moment ago. 0: none.
   */
  warmUpBytes?: number;
}

export function swarmshipFleet(options: SwarmshipFleetOptions = {}): SwarmshipFleetScenario {
  const warmUpBytes = options.warmUpBytes ?? 0;
  const apiToken = randomBytes(16).toString('hex');
  const agentToken = randomBytes(16).toString('hex');
  const agents = new Map<string, Child>();
  let publish: Child | undefined;
  let controller: Child | undefined;
  /** performance.now() when the warm-up's publish --wait returned. */
  let warmedUpAt: number | undefined;
  // The timed release's name/version, as agents log it (a warm-up release comes before it).
  const version = `v${randomBytes(3).toString('hex')}`;
  const ofRelease = (l: Line) => l.json?.release === `${RELEASE_NAME}/${version}`;
  let publishExit: Promise<{ at: number; code: number | string | null }> | undefined;
  const env = { SWARMSHIP_TOKEN: apiToken, SWARMSHIP_AGENT_TOKEN: agentToken, SWARMSHIP_CONFIG: '' };
  return {
    id: warmUpBytes > 0 ? 'swarmship-warm' : 'swarmship',
    label: warmUpBytes > 0 ? `swarmship after a ${fmtBytes(warmUpBytes)} warm-up release` : 'swarmship (controller, agents, publish --wait)',
    kind: 'swarm',
    notes: 'controller on the origin (super-seeding, its defaults), one agent per node, publish --wait from the origin; timed from the publish command, upload and torrent creation included; the controller chooses the piece length itself (256 KiB up to 512 MiB), --piece-length applies to the other scenarios' +
      (warmUpBytes > 0 ? `; before the clock starts, a ${fmtBytes(warmUpBytes)} release was shipped to every node the same way (agents and controller warm, as in service)` : ''),
    async setup(ctx: ScenarioContext) {
      const origin = ctx.net.origin;
      controller = ctx.spawn(
        origin,
        'controller',
        process.execPath,
        [...extraNodeArgs('FLEET_CONTROLLER_NODE_ARGS', origin.name), ctx.cli, 'controller', '--data', join(ctx.hostDir(origin), 'controller'), '--host', '0.0.0.0', '--port', String(API_PORT), '--agent-port', String(AGENT_PORT), '--peer-port', String(PEER_PORT), '--public-host', origin.address, '--log-format', 'json', '--json'],
        env,
      );
      const listening = await controller.waitLine((l) => l.json?.event === 'listening', 60_000, 'listening');
      // Agents verify signatures as in production: the manifest before, the artifact's SHA-256 after the download.
      const publicKeyFile = String((listening.json?.signingKey as { publicKeyFile: string }).publicKeyFile);
      for (const node of ctx.net.nodes) {
        const agent = ctx.spawn(
          node,
          `agent ${node.name}`,
          process.execPath,
          [...extraNodeArgs('FLEET_AGENT_NODE_ARGS', node.name), ctx.cli, 'agent', '--controller', `tcp://${origin.address}:${AGENT_PORT}`, '--data', join(ctx.hostDir(node), 'agent'), '--name', node.name, '--peer-port', String(PEER_PORT), '--advertise-address', node.address, '--http-port', '0', '--trust-key', publicKeyFile, '--json'],
          env,
        );
        agents.set(node.name, agent);
      }
      await Promise.all([...agents.values()].map((a) => a.waitLine((l) => l.json?.event === 'controller-connected', 60_000, 'controller-connected')));
      if (warmUpBytes > 0) warmedUpAt = await warmUp(ctx, warmUpBytes, env);
    },
    async start(ctx: ScenarioContext) {
      const origin = ctx.net.origin;
      publish = ctx.spawn(
        origin,
        'publish',
        process.execPath,
        publishArgs(ctx, ctx.artifact.path, RELEASE_NAME, version, Math.max(10, Math.round((ctx.deadline - performance.now()) / 1000))),
        env,
      );
      publishExit = publish.exited.then((code) => ({ at: performance.now(), code }));
      return Promise.resolve();
    },
    waitForNodes(ctx: ScenarioContext) {
      const failed = publishExit!.then(({ code }) => {
        if (code !== 0) throw new Error(`publish exited ${code}\n${publish!.tail()}`);
        return new Promise<never>(() => undefined);
      });
      return copiesFromLines(ctx, agents, 'swarmship rollout', (l) => l.json?.event === 'published' && ofRelease(l), (_node, line) => ({ at: line.at, path: join(String(line.json!.path), ctx.artifact.name) }), failed);
    },
    async finishedAt(ctx: ScenarioContext) {
      const { at, code } = await withDeadline(publishExit!, ctx.deadline, 'publish --wait');
      if (code !== 0) throw new Error(`publish --wait exited ${code}\n${publish!.tail()}`);
      return at;
    },
    milestones() {
      const out: Record<string, number> = {};
      if (warmedUpAt !== undefined) out['warm-up release on every node (before the clock)'] = warmedUpAt;
      const uploaded = publish?.lines.find((l) => l.json?.event === 'published');
      if (uploaded) out['publish: uploaded, release created'] = uploaded.at;
      const started = [...agents.values()].map((a) => a.lines.find((l) => l.json?.event === 'download-started' && ofRelease(l))?.at).filter((t): t is number => t !== undefined);
      if (started.length) out['first agent download-started'] = Math.min(...started);
      if (started.length) out['last agent download-started'] = Math.max(...started);
      // Every piece verified; 'published' follows once the copy is in place and served again.
      const downloaded = [...agents.values()].map((a) => a.lines.find((l) => l.json?.event === 'downloaded' && ofRelease(l))?.at).filter((t): t is number => t !== undefined);
      if (downloaded.length) out['last agent downloaded'] = Math.max(...downloaded);
      // From here the origin seeds like any peer: what it sends after is on top of its one copy.
      const ended = controller?.errLines.find((l) => l.json?.msg === 'super-seed-ended' && l.json?.release === `${RELEASE_NAME}@${version}`)?.at;
      if (ended !== undefined) out['origin: super-seeding ended (a full copy outside)'] = ended;
      return out;
    },
    agent: (node) => agents.get(node),
    async teardown() {
      agents.clear();
      return Promise.resolve();
    },
  };
}

/** Ships `bytes` of random data to every node with `publish --wait`, before the clock starts; resolves with when it was done. */
async function warmUp(ctx: ScenarioContext, bytes: number, env: Record<string, string>): Promise<number> {
  const origin = ctx.net.origin;
  const file = join(ctx.hostDir(origin), 'warm-up.bin');
  await writeFile(file, randomBytes(bytes));
  ctx.log(`  warm-up: shipping ${fmtBytes(bytes)} to every node first (untimed)`);
  const publish = ctx.spawn(
    origin,
    'warm-up publish',
    process.execPath,
    publishArgs(ctx, file, 'fleet-warm-up', `v${randomBytes(3).toString('hex')}`, 120),
    env,
  );
  const code = await publish.exited;
  if (code !== 0) throw new Error(`warm-up publish exited ${code}\n${publish.tail()}`);
  return performance.now();
}
