/**
 * npm's bittorrent-tracker as its own process, so the benchmark measures its CPU and
 * memory apart from everything else. HTTP only (no UDP, WebSocket or stats page), on
 * 127.0.0.1 and a free port; prints {"announce": url} once it listens, like
 * 'swarmship tracker --json', and closes on SIGTERM.
 *
 * Imported from its server entry: the package's main entry also loads a WebRTC module
 * that needs a native build.
 */
import Server from 'bittorrent-tracker/server';

/** The same announce interval as ours (60 s), in the milliseconds this server takes. */
const INTERVAL_MS = 60_000;

const server = new Server({ http: true, udp: false, ws: false, stats: false, interval: INTERVAL_MS });
server.on('error', (err: Error) => {
  process.stderr.write(`bittorrent-tracker: ${err.message}\n`);
  process.exit(1);
});
// Emitted for each refused or malformed request; the benchmark counts answers instead.
server.on('warning', () => undefined);
server.listen(0, '127.0.0.1', () => {
  const address = server.http?.address();
  if (!address || typeof address === 'string') {
    process.stderr.write('bittorrent-tracker: no TCP address\n');
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ announce: `http://127.0.0.1:${address.port}/announce`, port: address.port })}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    server.close(() => process.exit(0));
    // Keep-alive sockets would hold close() open.
    server.http?.closeAllConnections();
  });
}
