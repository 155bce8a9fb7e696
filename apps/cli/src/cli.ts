import { parseArgs } from 'node:util';
import { SWARMSHIP_VERSION } from '../../../libs/contracts/src/version.js';
import { commands } from './commands/index.js';
import { EXIT_FAILURE, EXIT_USAGE, InputError, UsageError, type Command, type CommandIo } from './command.js';


function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'swarmship: ship build artifacts to a fleet through a private BitTorrent swarm.',
    '',
    'Usage: swarmship <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `swarmship <command> --help` for the options of one command.',
    '',
  ].join('\n');
}

export async function runCli(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overview());
    return name ? 0 : EXIT_USAGE;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${SWARMSHIP_VERSION}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr.write(`swarmship: unknown command '${name}'. Run 'swarmship --help' for the list.\n`);
    return EXIT_USAGE;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help.endsWith('\n') ? command.help : `${command.help}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseCommandArgs(command, rest);
    return await command.run(values, positionals, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof InputError) {
      io.stderr.write(`swarmship ${command.name}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`swarmship ${command.name}: ${message}\n`);
    return EXIT_FAILURE;
  }
}

function parseCommandArgs(command: Command, args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}. See 'swarmship ${command.name} --help'.`);
  }
  const [min, max] = command.positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const usage = command.help.split('\n')[0];
    throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${parsed.positionals.length}. ${usage}`);
  }
  return parsed as { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
}
