import { createServer } from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now. For processes that must be restarted on the
 * same port (a controller and the agents that know it), where port 0 will not do.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
