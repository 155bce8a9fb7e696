/**
 * `npm run demo`: the product on this machine with nothing to configure. A controller
 * and three agents, each its own `swarmship` process on loopback, then a CI-style
 * `swarmship publish --wait` of a generated artifact: the upload and the rollout are
 * shown as they happen, every node's copy is checked against the artifact, and the
 * URLs to look around (API, docs, metrics) are printed. Runs until Ctrl-C.
 *
 * Options: --size BYTES (default 256 MiB), --agents N (default 3), --exit (stop once
 * every copy is verified instead of waiting for Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatBytes } from '../apps/cli/src/progress.js';
import { freePort } from '../bench/lib/net.js';

const CLI = fileURLToPath(new URL('../apps/cli/src/main.js', import.meta.url));
const ROOT = resolve('.swarmship-demo');

interface Proc {
  name: string;
  child: ChildProcess;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
}

const procs: Proc[] = [];

/** A background `swarmship` process whose JSON lines are collected. */
function start(name: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const proc: Proc = { name, child, events: [], exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      proc.events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not JSON: ignore.
    }
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  void proc.exited.then((code) => {
    if (code !== 0 && code !== null && err) process.stderr.write(`${name} exited with ${code}: ${err.trim()}\n`);
  });
  procs.push(proc);
  return proc;
}

function waitEvent(p: Proc, pred: (e: Record<string, unknown>) => boolean, ms = 60_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  return new Promise((res, rej) => {
    const poll = () => {
      const e = p.events.find(pred);
      if (e) return res(e);
      if (Date.now() > deadline || p.child.exitCode !== null) return rej(new Error(`${p.name} did not get ready`));
      setTimeout(poll, 50);
    };
    poll();
  });
}


async function generate(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let written = 0; written < size; written += chunk.length) {
    randomFillSync(chunk);
    if (!out.write(chunk.subarray(0, Math.min(chunk.length, size - written)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
}

async function sha256(path: string): Promise<string | undefined> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch {
    return undefined;
  }
  return h.digest('hex');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { size: { type: 'string' }, agents: { type: 'string' }, exit: { type: 'boolean' } } });
  const size = values.size ? Number(values.size) : 256 * 1024 * 1024;
  const agentCount = values.agents ? Number(values.agents) : 3;
  if (!(size > 0) || !(agentCount >= 1)) throw new Error('--size must be a positive byte count and --agents at least 1');

  await rm(ROOT, { recursive: true, force: true });
  await mkdir(ROOT, { recursive: true });
  const artifact = join(ROOT, 'release.tar.gz');
  console.log(`swarmship demo: generating a ${formatBytes(size)} artifact at ${artifact}`);
  await generate(artifact, size);

  // Tokens and ports are chosen here so the demo never collides with a real controller.
  const token = randomBytes(16).toString('hex');
  const agentToken = randomBytes(16).toString('hex');
  const [port, agentPort] = [await freePort(), await freePort()];
  const controller = start(
    'controller',
    ['controller', '--data', join(ROOT, 'controller'), '--host', '127.0.0.1', '--port', String(port), '--agent-port', String(agentPort), '--peer-port', '0', '--json'],
    { SWARMSHIP_TOKEN: token, SWARMSHIP_AGENT_TOKEN: agentToken },
  );
  const listening = await waitEvent(controller, (e) => e.event === 'listening');
  // Agents check every release's signature with the key the controller made at its first start.
  const publicKeyFile = String((listening.signingKey as { publicKeyFile: string }).publicKeyFile);
  const agents = Array.from({ length: agentCount }, (_, i) =>
    start(
      `node-${i + 1}`,
      ['agent', '--controller', `tcp://127.0.0.1:${agentPort}`, '--data', join(ROOT, `node-${i + 1}`), '--name', `node-${i + 1}`, '--labels', 'env=demo', '--peer-port', '0', '--listen-host', '127.0.0.1', '--http-port', '0', '--trust-key', publicKeyFile, '--json'],
      { SWARMSHIP_AGENT_TOKEN: agentToken },
    ),
  );
  const agentMetrics = await Promise.all(agents.map((a) => waitEvent(a, (e) => e.event === 'http-listening').then((e) => `http://127.0.0.1:${String(e.port)}/metrics`)));
  console.log(`controller ${String(listening.api)} with ${agentCount} agents\n`);

  console.log(`$ swarmship publish ${artifact} --name demo --version 1 --wait`);
  const publish = spawn(process.execPath, [CLI, 'publish', artifact, '--name', 'demo', '--version', '1', '--wait', '--timeout', '10m'], {
    stdio: 'inherit',
    env: { ...process.env, SWARMSHIP_URL: `http://127.0.0.1:${port}`, SWARMSHIP_TOKEN: token },
  });
  const code = await new Promise<number | null>((r) => publish.once('exit', r));
  if (code !== 0) throw new Error(`publish exited with ${code}`);

  console.log('');
  const expected = await sha256(artifact);
  let allGood = true;
  for (const a of agents) {
    const copy = join(ROOT, a.name, 'releases', 'demo', '1', 'release.tar.gz');
    const ok = (await sha256(copy)) === expected;
    allGood &&= ok;
    console.log(`${a.name}: ${copy}  ${ok ? 'identical to the artifact (SHA-256)' : 'DIFFERS FROM THE ARTIFACT'}`);
  }
  const status = spawn(process.execPath, [CLI, 'status', 'demo@1'], { stdio: 'inherit', env: { ...process.env, SWARMSHIP_URL: `http://127.0.0.1:${port}`, SWARMSHIP_TOKEN: token } });
  await new Promise((r) => status.once('exit', r));
  console.log(
    [
      '',
      `API      ${String(listening.api)}   (token ${token})`,
      `docs     ${String(listening.docs)}`,
      `metrics  ${String(listening.metrics)}`,
      ...agentMetrics.map((m, i) => `node-${i + 1}   ${m}`),
      `try      SWARMSHIP_URL=http://127.0.0.1:${port} SWARMSHIP_TOKEN=${token} npx swarmship releases ls`,
    ].join('\n'),
  );
  if (!values.exit) {
    console.log('\nthe fleet keeps running; Ctrl-C stops everything');
    await new Promise<void>((r) => process.once('SIGINT', () => r()));
  }
  return allGood ? 0 : 1;
}

async function stopAll(): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 8000))]);
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    console.error(`demo failed: ${err.message}`);
    await stopAll();
    process.exit(1);
  });
