/**
 * The HTTP origin of the fan-out scenario: a static file server for one file, as nginx
 * would serve it (sendfile aside). Run inside the origin's namespace as
 * `node http-origin.js <file> <host> <port>`; prints {"event":"listening",...} when ready
 * and serves GET /<basename> with Content-Length until SIGTERM.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { basename } from 'node:path';

async function main(): Promise<void> {
  const [file, host = '0.0.0.0', portText = '8080'] = process.argv.slice(2);
  if (!file) throw new Error('usage: http-origin <file> [host] [port]');
  const size = (await stat(file)).size;
  const path = `/${encodeURIComponent(basename(file))}`;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : Number(portText);
  process.stdout.write(JSON.stringify({ event: 'listening', url: `http://${host}:${port}${path}`, bytes: size }) + '\n');
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`http-origin: ${err.message}\n`);
  process.exit(1);
});
