import type { NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { createServer, type Server } from 'node:http';

/** What one HTTP server lets a client do before it is answered or cut off. */
export interface HttpLimits {
  /** Request line plus headers; more is answered 431. */
  maxHeaderBytes: number;
  /** From the first byte of a request to the end of its headers; slower is answered 408 and closed. */
  headersTimeoutMs: number;
  /** Whole request, body included; 0 for none (uploads of any size). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic at all, in the middle of a request or not. */
  idleTimeoutMs: number;
}

/**
 * Nest's Express adapter on a node:http server made with our limits. The stock adapter
 * makes a server with Node's defaults, and the timeouts that matter most against slow
 * clients (headers, and how often they are checked) can only be set when it is made.
 */
export class BoundedExpressAdapter extends ExpressAdapter {
  constructor(private readonly limits: HttpLimits) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    if (options.httpsOptions) throw new Error('HTTPS is terminated in front of swarmship, not by it');
    const l = this.limits;
    const server: Server = createServer(
      {
        maxHeaderSize: l.maxHeaderBytes,
        headersTimeout: l.headersTimeoutMs,
        requestTimeout: l.requestTimeoutMs,
        keepAliveTimeout: l.keepAliveTimeoutMs,
        // Node checks the two timeouts above on this period (30 s by default), so a slow
        // client would otherwise hold its connection up to that much longer.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
      },
      this.getInstance(),
    );
    server.setTimeout(l.idleTimeoutMs);
    this.setHttpServer(server);
  }
}

/** One entry of the routing table: a route, or a handler mounted on a path (static files). */
export interface RouteEntry {
  method: string;
  path: string;
}

interface RouterLayer {
  name?: string;
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
}

/**
 * Every route the Express instance under a Nest app answers, as it is registered (Nest's
 * controllers, the global prefix, anything mounted on Express directly), so what is
 * exposed can be checked against what was meant to be rather than against documentation.
 */
export function routeTable(expressInstance: unknown): RouteEntry[] {
  const app = expressInstance as { router?: { stack?: RouterLayer[] }; _router?: { stack?: RouterLayer[] } };
  const out: RouteEntry[] = [];
  const walk = (stack: RouterLayer[] | undefined, prefix: string) => {
    for (const layer of stack ?? []) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on) out.push({ method: method === '_all' ? 'ALL' : method.toUpperCase(), path: joinPath(prefix, layer.route.path) });
        }
        continue;
      }
      const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '/';
      if (layer.handle?.stack) walk(layer.handle.stack, joinPath(prefix, mount));
      else if (mount !== '/') out.push({ method: 'USE', path: joinPath(prefix, mount) });
    }
  };
  walk((app.router ?? app._router)?.stack, '');
  return out;
}

function joinPath(prefix: string, path: string): string {
  if (path === '/' || path === '') return prefix || '/';
  return `${prefix.replace(/\/$/, '')}${path.startsWith('/') ? '' : '/'}${path}`;
}
