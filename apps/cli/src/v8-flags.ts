import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags the long-running commands (`agent`, `controller`) set for themselves before
 * anything else loads, each unless whoever started node chose that setting themselves
 * (docs/decisions/0008 and 0010). Set from inside because they are started by a
 * shebang, a DaemonSet or a unit file we do not control, and a wrapper process would
 * cost more than it saves. (On node's command line, `--semi-space-growth-factor` is not
 * honoured by Node 20: the young generation still grows. Set from inside, it is.)
 */

/** The names of the V8 flags node was started with, on its command line or in NODE_OPTIONS. */
function flagsGiven(execArgv: readonly string[], nodeOptions: string): string[] {
  // V8 takes its flags with dashes or underscores.
  return [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => a.split('=')[0]!.replace(/_/g, '-'));
}

/** Sets `flag` unless one of `choices` was given to node; true when it was set. */
function setUnlessChosen(flag: string, choices: readonly string[], execArgv: readonly string[], nodeOptions: string): boolean {
  if (flagsGiven(execArgv, nodeOptions).some((a) => choices.includes(a))) return false;
  setFlagsFromString(flag);
  return true;
}

/**
 * Keeps V8's young generation at its initial size (1 MiB semi-spaces) for the life of
 * the agent.
 *
 * V8 grows the young generation to 16 MiB semi-spaces when start-up allocates fast, and
 * an agent keeps them: 30-40 MiB of resident memory for nothing. Worse, each 64 KiB
 * socket read and each piece back from a hash worker is an ArrayBuffer counted as
 * external memory until a scavenge frees it; with large semi-spaces scavenges are rare,
 * the count climbs, and V8 answers with a full mark-compact every half second of a
 * download. Measured on 3 loopback agents taking 256 MiB: with small semi-spaces 17 %
 * less CPU per agent and 30 MiB less peak memory (docs/decisions/0008).
 *
 * `--max-semi-space-size` cannot be changed once the heap exists; the growth factor is
 * read each time V8 would grow, so setting it to 1 first thing does the same.
 */
export function keepYoungGenerationSmall(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return setUnlessChosen('--semi-space-growth-factor=1', ['--max-semi-space-size', '--semi-space-growth-factor', '--min-semi-space-size'], execArgv, nodeOptions);
}

/**
 * Caps how much TurboFan inlines into one optimised function: 230 bytes of bytecode
 * instead of 920. An agent optimises about a hundred functions while a release comes
 * in, and with the default budget those compiles were 7-8 % of its CPU in the fleet
 * benchmark (more than its own JavaScript): the hot paths are message handlers that
 * call into many others, and each one inlined grows the graph the compiler works on.
 * With the cap the compiles take half as long, and the code they make is as fast for
 * this work (docs/decisions/0010).
 */
export function keepOptimisingCompilesSmall(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return setUnlessChosen('--max-inlined-bytecode-size-cumulative=230', ['--max-inlined-bytecode-size-cumulative', '--turbo-inlining', '--no-turbo-inlining'], execArgv, nodeOptions);
}

/**
 * The flags for the command named first on the command line, set by the CLI's entry
 * before it loads the command: the agent gets both of the above. The controller keeps
 * its young generation small too: the origin's seeding meets what an agent's download
 * did, NestJS's start-up grows the young generation to 16 MiB semi-spaces, and V8 then
 * starts a full mark-compact whenever the old generation's room falls under the young
 * generation's size, every half second of a 16-node rollout. Kept small: 7
 * mark-compacts instead of 25 per 256 MiB release, 0.15-0.3 s less controller CPU and
 * 20 MiB less memory. The inlining cap made no measurable difference to the controller,
 * and the short commands gain nothing from either.
 */
export function tuneV8ForCommand(command: string | undefined): { youngGeneration: boolean; inlining: boolean } {
  const longRunning = command === 'agent' || command === 'controller';
  return { youngGeneration: longRunning && keepYoungGenerationSmall(), inlining: command === 'agent' && keepOptimisingCompilesSmall() };
}
