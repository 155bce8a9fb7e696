import type { Command, CommandIo, ParsedValues } from '../command.js';
import { InputError } from '../command.js';
import { AgentConfigError, type RawSettings } from '../../../../libs/agent-core/src/config.js';
import { agentLog } from '../../../agent/src/log.js';

const HELP = `Usage: swarmship agent --controller tcp://HOST:PORT --trust-key FILE [--data DIR] [--name NODE] [--labels k=v,…] [--peer-port N]

Run the agent of one node: sync the releases this node should hold from the
controller's agent channel, download each from the swarm (every piece verified) into
<data>/staging/<name>/<version>/, publish it whole by rename at
<data>/releases/<name>/<version>/ (a .tar/.tar.gz the controller marks for unpacking is
also unpacked into …/<version>/${'unpacked'}/), keep seeding it, and remove releases the
controller retires (after its grace period) and versions beyond --keep. Progress and
failures are reported to the controller; when it cannot be reached the agent keeps
serving what it holds and retries. Runs until SIGTERM or Ctrl-C, then announces
'stopped', finishes its writes and exits 0. Interrupted downloads resume on restart.

Releases are signed. Before downloading, the agent checks that the release's manifest
was signed by a key it trusts and names the torrent it was given; after every piece is
verified it checks the SHA-256 of the whole artifact against the manifest, and only
then publishes. A release that fails either check is reported failed and nothing is
published. The agent does not start without a trusted key: give it the controller's
public key (the controller writes it to <its data>/signing-key.pub.pem and prints it
with 'swarmship controller --print-public-key'). With no key given and a controller on
127.0.0.1, the key of a controller started with its defaults in the same directory
(./.swarmship/controller/signing-key.pub.pem) is trusted.

Every setting comes from a flag, else a SWARMSHIP_* variable, else the YAML file
(--config, keys in brackets), else its default:
  --controller URL        SWARMSHIP_CONTROLLER [controller]. The agent channel,
                          tcp://host:port. Default tcp://127.0.0.1:7071.
  (no flag)               SWARMSHIP_AGENT_TOKEN [token]. Secret the controller checks.
  --name NODE             SWARMSHIP_NODE_NAME [name]. Default the host name.
  --labels k=v,…          SWARMSHIP_LABELS [labels]. For release selectors.
  --data DIR              SWARMSHIP_DATA [data]. Default ./.swarmship/agent.
  --peer-port N           SWARMSHIP_PEER_PORT [peerPort]. Default 6881; 0 a free one.
  --listen-host H         SWARMSHIP_LISTEN_HOST [listenHost]. Default every interface.
  --advertise-address A   SWARMSHIP_ADVERTISE_ADDRESS [advertiseAddress]. The address
                          other nodes dial. Default the first external IPv4 address.
  --upload-limit RATE     SWARMSHIP_UPLOAD_LIMIT [uploadLimit]. Default unlimited.
  --download-limit RATE   SWARMSHIP_DOWNLOAD_LIMIT [downloadLimit]. Default unlimited.
                          A RATE is bytes per second: 100MB, 64MiB, 800mbit (k, m, g,
                          kb, mb, gb count 1000s; kib, mib, gib 1024s; kbit, mbit, gbit
                          bits); 0 or unlimited for no cap.
  --keep N                SWARMSHIP_KEEP_VERSIONS [keepVersions]. Published versions
                          kept per artifact. Default 2.
  --seed-for DURATION     SWARMSHIP_SEED_FOR [seedFor]. Seed a release this long after
                          publishing it (90s, 30m, 12h, 7d). Default forever.
  --http-port N           SWARMSHIP_HTTP_PORT [httpPort]. /metrics, /healthz, /readyz.
                          Default 9465; 0 a free one.
  --on-publish CMD        SWARMSHIP_ON_PUBLISH [onPublish]. Shell command run in the
                          release dir after publishing, with SWARMSHIP_RELEASE_NAME,
                          SWARMSHIP_RELEASE_VERSION and SWARMSHIP_RELEASE_DIR set.
  --trust-key FILE        SWARMSHIP_TRUST_KEY [trustKeys]. The controller's public key
                          (PEM). Repeat it to trust several keys while one is rotated.
                          The variable takes PEM text or comma-separated files; the
                          YAML key a file, PEM text or a list of them.
  --allow-unsigned        SWARMSHIP_ALLOW_UNSIGNED [allowUnsigned]. Accept releases that
                          carry no signed manifest (a controller older than signing);
                          with no trusted key at all, check no signature. Not for
                          production.
  --page-cache            SWARMSHIP_PAGE_CACHE [pageCache]. Write downloads through the
                          page cache. By default verified pieces are written past it
                          (O_DIRECT, where the filesystem has it): less CPU per byte,
                          and a release does not push the node's own work out of the
                          cache; the first read of a new release then comes from disk.
  --config FILE           SWARMSHIP_CONFIG. YAML file of the settings above.
  --json                  Log JSON lines even on a terminal (the default elsewhere).
  -h, --help              Show this help.

Example:
  SWARMSHIP_AGENT_TOKEN=s3cret swarmship agent --controller tcp://controller:7001 \\
    --trust-key /etc/swarmship/controller.pub.pem --data /var/lib/swarmship --labels zone=eu-1,role=web
`;

const FLAG_TO_SETTING: Record<string, keyof RawSettings> = {
  controller: 'controller', name: 'name', labels: 'labels', data: 'data', 'peer-port': 'peerPort', 'listen-host': 'listenHost',
  'advertise-address': 'advertiseAddress', 'upload-limit': 'uploadLimit', 'download-limit': 'downloadLimit', keep: 'keepVersions',
  'seed-for': 'seedFor', 'http-port': 'httpPort', 'on-publish': 'onPublish',
};

export const agentCommand: Command = {
  name: 'agent',
  help: HELP,
  options: {
    ...Object.fromEntries(Object.keys(FLAG_TO_SETTING).map((f) => [f, { type: 'string' as const }])),
    config: { type: 'string' },
    json: { type: 'boolean' },
    'trust-key': { type: 'string', multiple: true },
    'allow-unsigned': { type: 'boolean' },
    'page-cache': { type: 'boolean' },
  },
  positionals: [0, 0],
  async run(values: ParsedValues, _positionals: string[], io: CommandIo): Promise<number> {
    const flags: RawSettings & { config?: string } = {};
    for (const [flag, key] of Object.entries(FLAG_TO_SETTING)) if (typeof values[flag] === 'string') flags[key] = values[flag];
    if (typeof values.config === 'string') flags.config = values.config;
    if (Array.isArray(values['trust-key'])) flags.trustKeys = values['trust-key'];
    if (values['allow-unsigned'] === true) flags.allowUnsigned = true;
    if (values['page-cache'] === true) flags.pageCache = true;
    // NestJS loads only when an agent runs, so other commands start fast.
    const { loadAgentConfig, startAgentApp } = await import('../../../agent/src/run.js');
    let config;
    try {
      config = await loadAgentConfig(flags, io.env);
    } catch (err) {
      if (err instanceof AgentConfigError) throw new InputError(err.message);
      throw err;
    }
    const log = agentLog(io.stdout, values.json === true ? true : undefined);
    const running = await startAgentApp(config, log);
    await io.interrupted;
    log.info('agent-stopping', { reason: 'signal' });
    await running.close();
    return 0;
  },
};
