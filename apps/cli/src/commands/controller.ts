import { InputError, type Command, type CommandIo, type ParsedValues } from '../command.js';

const HELP = `Usage: swarmship controller [--data DIR] [--port N] [--config FILE] [options] [--json]

Run the swarmship controller: the REST API that releases are published to, the private
tracker, the origin seeder that serves each release to the fleet, and the agent channel
agents sync with. Releases are kept under the data dir, so a restart loses nothing.
Runs until interrupted (Ctrl-C or SIGTERM), then closes cleanly.

Options (each also from SWARMSHIP_<NAME> or the YAML file; flags win, then environment,
then the file, then the default):
  --data DIR                 Data dir: releases and generated tokens. SWARMSHIP_DATA.
                             Default ./.swarmship/controller.
  --port N                   HTTP port: API, docs, tracker, metrics. SWARMSHIP_PORT.
                             Default 7070; 0 picks a free one.
  --host H                   Address to listen on (HTTP and agent channel).
                             SWARMSHIP_HOST. Default 0.0.0.0.
  --agent-port N             Agent channel (TCP) port. SWARMSHIP_AGENT_PORT. Default 7071.
  --peer-port N              Origin seeder's BitTorrent port. SWARMSHIP_PEER_PORT.
                             Default 6881.
  --public-host H            How agents reach this controller: goes into announce URLs
                             and the origin address. SWARMSHIP_PUBLIC_HOST. Default 127.0.0.1.
  --origin-upload-limit RATE
                             Origin upload cap. SWARMSHIP_ORIGIN_UPLOAD_LIMIT. Default
                             unlimited. A RATE is bytes per second: 100MB, 64MiB, 800mbit
                             (k, m, g, kb, mb, gb count 1000s; kib, mib, gib 1024s; kbit,
                             mbit, gbit bits); 0 or unlimited for no cap; at least 16KiB.
  --super-seed true|false    Super-seed each new release. SWARMSHIP_SUPER_SEED. Default true.
  --retire-grace SECONDS     How long agents keep a retired release. SWARMSHIP_RETIRE_GRACE.
                             Default 600.
  --agent-timeout SECONDS    An agent silent this long is lost: listed as such, no longer
                             counted towards rollouts. SWARMSHIP_AGENT_TIMEOUT. Default 120.
  --agent-forget SECONDS     A lost agent silent this long is dropped from the agent list.
                             SWARMSHIP_AGENT_FORGET. Default 3600 (or twice the timeout).
  --path-roots DIR,...       Directories a publish by path may name. SWARMSHIP_PATH_ROOTS.
                             Default none: publishing by path is off.
  --http-headers-timeout SECONDS
                             An HTTP client must send its request headers this soon
                             (slow clients get 408). SWARMSHIP_HTTP_HEADERS_TIMEOUT.
                             Default 20.
  --http-idle-timeout SECONDS
                             An HTTP connection silent this long is closed, a stalled
                             upload too. SWARMSHIP_HTTP_IDLE_TIMEOUT. Default 120.
  --signing-key FILE         Ed25519 private key (PEM) release manifests are signed with.
                             SWARMSHIP_SIGNING_KEY. Default <data>/signing-key.pem, made
                             at the first start (mode 0600).
  --log-format F             auto, json or text. SWARMSHIP_LOG_FORMAT. Default auto: JSON
                             lines unless standard error is a terminal.
  --config FILE              YAML file of settings (keys: data, port, agentPort, …).
                             SWARMSHIP_CONFIG.
  --json                     Print the addresses as one JSON line.
  --print-public-key         Print the signing key's public half (PEM) and exit: what
                             agents are given with --trust-key. Reads the key --data
                             or --signing-key names; makes none (exit 2 if missing).
  -h, --help                 Show this help.

Tokens come from SWARMSHIP_TOKEN (API) and SWARMSHIP_AGENT_TOKEN (agents). When unset,
random ones are made at the first start and kept in <data>/tokens.yaml (mode 0600); the
controller prints where, never the tokens themselves.

Every release's manifest (name, version, info hash, SHA-256 and size of the artifact,
whether agents unpack it) is signed with the signing key; agents refuse releases no key
they trust has signed. The public key is written to <data>/signing-key.pub.pem, served
at GET /api/v1/signing-key and printed by --print-public-key. To rotate: give agents the
new public key beside the old (--trust-key twice), restart the controller with the new
key (it re-signs every release), then drop the old key from the agents.

Example:
  swarmship controller --data /var/lib/swarmship --public-host 10.0.0.5
`;

const SETTING_FLAGS = ['data', 'port', 'host', 'agent-port', 'peer-port', 'public-host', 'origin-upload-limit', 'super-seed', 'retire-grace', 'agent-timeout', 'agent-forget', 'path-roots', 'signing-key', 'http-headers-timeout', 'http-idle-timeout', 'log-format', 'config'] as const;

export const controllerCommand: Command = {
  name: 'controller',
  help: HELP,
  options: { ...Object.fromEntries(SETTING_FLAGS.map((f) => [f, { type: 'string' as const }])), json: { type: 'boolean' }, 'print-public-key': { type: 'boolean' } },
  positionals: [0, 0],
  async run(values: ParsedValues, _positionals: string[], io: CommandIo): Promise<number> {
    // Loaded here, not at the top: the other commands should not pay for NestJS.
    const lib = await import('../../../../libs/controller-core/src/index.js');
    const flags: Record<string, string | undefined> = {};
    for (const f of SETTING_FLAGS) if (typeof values[f] === 'string') flags[f] = values[f];
    let config;
    let signingKey;
    try {
      const loaded = await lib.loadControllerConfig({ flags, env: io.env });
      if (values['print-public-key'] === true) {
        // Read only: a key made here would be one no running controller signs with.
        io.stdout.write(lib.readSigningKey(loaded).publicPem);
        return 0;
      }
      config = await lib.ensureTokens(loaded);
      signingKey = lib.openSigningKey(config);
    } catch (err) {
      if (err instanceof lib.ConfigError) throw new InputError(err.message);
      throw err;
    }
    const format = config.logFormat === 'auto' ? (io.stderr.isTTY ? 'text' : 'json') : config.logFormat;
    const log = lib.createLogger({ format, stream: io.stderr, debug: io.env['SWARMSHIP_DEBUG'] === '1' });
    const { startController } = await import('../../../controller/src/start.js');
    let running;
    try {
      running = await startController(config, log);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new InputError(`cannot listen: ${e.message}`);
      throw err;
    }
    const tokens = config.tokensFile ?? 'from SWARMSHIP_TOKEN and SWARMSHIP_AGENT_TOKEN';
    if (values.json === true) {
      io.stdout.write(
        JSON.stringify({
          event: 'listening',
          api: running.apiUrl,
          docs: running.docsUrl,
          metrics: running.metricsUrl,
          announce: running.announceUrl,
          agentChannel: running.agentChannel,
          peerPort: running.peerPort,
          dataDir: config.dataDir,
          tokensFile: config.tokensFile ?? null,
          signingKey: { keyId: signingKey.keyId, publicKeyFile: signingKey.publicFile, generated: signingKey.generated },
        }) + '\n',
      );
    } else {
      io.stdout.write(
        [
          `API           ${running.apiUrl}`,
          `docs          ${running.docsUrl}`,
          `metrics       ${running.metricsUrl}`,
          `tracker       ${running.announceUrl}`,
          `agent channel ${running.agentChannel}`,
          `origin peer   port ${running.peerPort}`,
          `data          ${config.dataDir}`,
          `tokens        ${tokens}`,
          `signing key   ${signingKey.keyId}${signingKey.generated ? ' (new)' : ''}; agents trust it with --trust-key ${signingKey.publicFile}`,
          'Ctrl-C stops the controller.',
          '',
        ].join('\n'),
      );
    }
    await io.interrupted;
    log.info('stopping');
    await running.close();
    log.info('stopped');
    return 0;
  },
};
