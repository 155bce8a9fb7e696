import 'reflect-metadata';
import { RequestMethod, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { SWARMSHIP_VERSION } from '../../../libs/contracts/src/version.js';
import { ControllerCore, ControllerMetrics, type ControllerConfig, type Logger } from '../../../libs/controller-core/src/index.js';
import { handleTrackerRequest } from '../../../libs/tracker/src/server.js';
import { ControllerAppModule } from './app.module.js';
import { BoundedExpressAdapter, routeTable } from './bounded-http.js';
import { BoundedJsonSocket } from './channel-socket.js';
import { ApiErrorFilter } from './error.filter.js';
import { NestLogger } from './nest-logger.js';

export interface RunningController {
  apiUrl: string;
  docsUrl: string;
  metricsUrl: string;
  announceUrl: string;
  /** host:port of the agent channel (TCP). */
  agentChannel: string;
  peerPort: number;
  core: ControllerCore;
  close(): Promise<void>;
}

/** Request line and headers: Node's default, said out loud. Longer is answered 431. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** An idle keep-alive connection between two requests. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * Starts the controller: HTTP API with the embedded tracker, the agent channel, the
 * origin seeder, then loads and seeds the stored releases. Resolves once all are up.
 */
export async function startController(config: ControllerConfig, log: Logger): Promise<RunningController> {
  const core = new ControllerCore(config, log);
  const metrics = new ControllerMetrics(core);
  // No cap on a whole request: a large artifact uploaded over a modest link would fail
  // half-way. Instead a request must send its headers promptly (slow-loris clients are
  // dropped) and never stall for long.
  const adapter = new BoundedExpressAdapter({
    maxHeaderBytes: MAX_HEADER_BYTES,
    headersTimeoutMs: config.httpHeadersTimeoutSeconds * 1000,
    requestTimeoutMs: 0,
    keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
    idleTimeoutMs: config.httpIdleTimeoutSeconds * 1000,
  });
  const app = await NestFactory.create(ControllerAppModule.forRoot(core, metrics), adapter, {
    logger: new NestLogger(log),
    // Bodies are read by the routes themselves, after auth: uploads streamed, JSON bounded.
    bodyParser: false,
  });
  try {
    mountTracker(app, core, metrics);
    app.setGlobalPrefix('api/v1', {
      exclude: [
        { path: 'healthz', method: RequestMethod.GET },
        { path: 'readyz', method: RequestMethod.GET },
        { path: 'metrics', method: RequestMethod.GET },
      ],
    });
    app.useGlobalFilters(new ApiErrorFilter(log));
    // Any client can connect to the agent channel before it shows a token: frames are
    // bounded before they are buffered (see BoundedJsonSocket).
    app.connectMicroservice<MicroserviceOptions>({ transport: Transport.TCP, options: { host: config.host, port: config.agentPort, socketClass: BoundedJsonSocket } });
    const document = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle('swarmship controller')
        .setDescription('Publish releases and watch them reach the fleet. Every /api/v1 route needs `Authorization: Bearer <token>`.')
        .setVersion(SWARMSHIP_VERSION)
        .addBearerAuth()
        .build(),
    );
    SwaggerModule.setup('api/docs', app, document);

    const server = app.getHttpServer() as HttpServer;
    await app.listen(config.port, config.host);
    const httpPort = (server.address() as AddressInfo).port;
    // What is really exposed, for anyone checking it against what should be (SWARMSHIP_DEBUG=1).
    log.debug('http routes', { routes: routeTable(app.getHttpAdapter().getInstance()).map((r) => `${r.method} ${r.path}`) });
    await core.start(httpPort);
    // Agents are let in only once the stored releases are loaded: a sync answered before
    // would tell them their releases were retired, and they would cancel or delete them.
    await app.startAllMicroservices();
    const channel = app.getMicroservices()[0]!.unwrap<NetServer>().address() as AddressInfo;
    const base = core.publicBaseUrl;
    const channelHost = config.publicHost.includes(':') ? `[${config.publicHost}]` : config.publicHost;
    return {
      apiUrl: `${base}/api/v1`,
      docsUrl: `${base}/api/docs`,
      metricsUrl: `${base}/metrics`,
      announceUrl: core.announceUrl,
      agentChannel: `${channelHost}:${channel.port}`,
      peerPort: core.origin.port,
      core,
      close: async () => {
        // Held long-polls are answered first, so closing the channel does not wait on them.
        core.fleet.wakeAll();
        (app.getHttpServer() as HttpServer).closeIdleConnections();
        await app.close();
        await core.close();
      },
    };
  } catch (err) {
    await app.close().catch(() => undefined);
    await core.close().catch(() => undefined);
    throw err;
  }
}

/**
 * /announce and /scrape on the API's port, ahead of Nest's routes: BitTorrent clients
 * send no bearer token, and the tracker is private by its allow-list instead.
 */
function mountTracker(app: INestApplication, core: ControllerCore, metrics: ControllerMetrics): void {
  const express = app.getHttpAdapter().getInstance() as { get(path: string, h: (req: IncomingMessage, res: ServerResponse) => void): void };
  express.get('/announce', (req, res) => {
    metrics.announced();
    handleTrackerRequest(core.tracker, req, res);
  });
  express.get('/scrape', (req, res) => handleTrackerRequest(core.tracker, req, res));
}
