/**
 * HTTP fan-out, what a team does without a swarm: a static HTTP server on the origin,
 * and every node fetches the artifact from it at once with curl. A node is done when
 * curl exits 0 (the whole body received and written); the harness then checks the copy.
 */
import { join } from 'node:path';
import type { Child } from '../../lib/proc.js';
import { withDeadline, type NodeCopy, type Scenario, type ScenarioContext } from '../scenario.js';

const PORT = 8080;

export function httpFanout(): Scenario {
  let url = '';
  const fetches = new Map<string, { child: Child; exited: Promise<{ at: number; code: number | string | null }> }>();
  return {
    id: 'http',
    label: 'HTTP fan-out (Node static server → curl)',
    kind: 'fanout',
    notes: 'a small Node HTTP server on the origin (nginx is not installed here), curl on every node, all started at once',
    async setup(ctx: ScenarioContext) {
      const server = ctx.spawn(ctx.net.origin, 'http-origin', process.execPath, [join(ctx.root, 'dist/bench/fleet/http-origin.js'), ctx.artifact.path, ctx.net.origin.address, String(PORT)]);
      const line = await server.waitLine((l) => l.json?.event === 'listening', 15_000, 'listening');
      url = String(line.json!.url);
    },
    async start(ctx: ScenarioContext) {
      for (const node of ctx.net.nodes) {
        const out = join(ctx.hostDir(node), ctx.artifact.name);
        const child = ctx.spawn(node, `curl ${node.name}`, 'curl', ['--silent', '--show-error', '--fail', '--noproxy', '*', '--output', out, url]);
        fetches.set(node.name, { child, exited: child.exited.then((code) => ({ at: performance.now(), code })) });
      }
      return Promise.resolve();
    },
    async waitForNodes(ctx: ScenarioContext) {
      const done = new Map<string, NodeCopy>();
      await withDeadline(
        Promise.all(
          [...fetches].map(async ([name, f]) => {
            const { at, code } = await f.exited;
            if (code !== 0) throw new Error(`curl on ${name} exited ${code}\n${f.child.tail()}`);
            done.set(name, { at, path: join(ctx.hostDir(ctx.net.nodes.find((n) => n.name === name)!), ctx.artifact.name) });
          }),
        ),
        ctx.deadline,
        'HTTP fan-out',
      );
      return done;
    },
    async teardown() {
      fetches.clear();
      return Promise.resolve();
    },
  };
}
