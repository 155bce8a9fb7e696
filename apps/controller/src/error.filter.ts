import { HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiError } from '../../../libs/contracts/src/rest.js';
import { ControllerError, type ControllerErrorCode, type Logger } from '../../../libs/controller-core/src/index.js';

/** The one place a domain error becomes an HTTP status; exhaustive, so a new code must be mapped. */
export function statusOf(code: ControllerErrorCode): { status: number; error: string } {
  switch (code) {
    case 'bad-request':
      return { status: 400, error: 'Bad Request' };
    case 'unauthorized':
      return { status: 401, error: 'Unauthorized' };
    case 'not-found':
      return { status: 404, error: 'Not Found' };
    case 'conflict':
      return { status: 409, error: 'Conflict' };
    case 'too-large':
      return { status: 413, error: 'Payload Too Large' };
    case 'no-space':
      return { status: 507, error: 'Insufficient Storage' };
    case 'unavailable':
      return { status: 503, error: 'Service Unavailable' };
    default:
      return assertUnreachable(code);
  }
}

/** How long the rest of a refused upload is read before the connection is cut anyway... */
const DRAIN_LIMIT_MS = 30_000;
/** ...or once the client has sent nothing for this long (it stalled, or it is gone). */
const DRAIN_IDLE_MS = 2_000;

/**
 * Answers with `Connection: close`, then reads and drops what is left of `req`'s body
 * before closing (a lingering close): our side is shut for writing once the answer is
 * out, reading goes on until the body ends, DRAIN_LIMIT_MS pass, or the client is silent
 * for DRAIN_IDLE_MS. Node would destroy the socket as soon as the answer is written.
 */
function drainThenClose(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  const socket = res.socket as (Socket & { destroySoon?: () => void }) | null;
  // A request already destroyed (a reader gave up on it) has nothing left to read: Node closes once the answer is out.
  if (!socket || socket.destroyed || req.destroyed || typeof socket.destroySoon !== 'function') return;
  const closeWhenWritten = socket.destroySoon.bind(socket);
  let answered = false;
  let drained = false;
  const cut = () => socket.destroy();
  const limit = setTimeout(cut, DRAIN_LIMIT_MS);
  let idle = setTimeout(cut, DRAIN_IDLE_MS);
  const stop = () => {
    clearTimeout(limit);
    clearTimeout(idle);
  };
  // Called by the HTTP server once the answer is written.
  socket.destroySoon = () => {
    answered = true;
    if (drained) closeWhenWritten();
    else socket.end();
  };
  req.once('end', () => {
    drained = true;
    stop();
    if (answered) closeWhenWritten();
  });
  req.once('close', stop);
  req.on('data', () => {
    clearTimeout(idle);
    idle = setTimeout(cut, DRAIN_IDLE_MS);
  });
  req.resume();
}

function assertUnreachable(x: never): never {
  throw new Error(`unmapped error code ${String(x)}`);
}

const RETRY_AFTER_SECONDS = 2;

/** Every error leaves as an ApiError body; unexpected ones are logged and answered 500. */
export class ApiErrorFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<ServerResponse>();
    const req = http.getRequest<IncomingMessage & { originalUrl?: string }>();
    let body: ApiError;
    if (exception instanceof ControllerError) {
      const { status, error } = statusOf(exception.code);
      body = { statusCode: status, error, message: exception.message };
      if (exception.field !== undefined) body.field = exception.field;
    } else if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const r = exception.getResponse();
      const message = typeof r === 'string' ? r : String((r as { message?: unknown }).message ?? exception.message);
      body = { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
    } else {
      this.log.error('request failed', { method: req.method, path: (req.originalUrl ?? req.url ?? '').split('?')[0], error: (exception as Error)?.stack ?? String(exception) });
      body = { statusCode: 500, error: 'Internal Server Error', message: 'internal error; see the controller log' };
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A refusal sent before the upload was read in full (409, 507): the answer goes out
    // now, the connection is not reused, and the rest of the body is read and dropped.
    // Closing at once would not do: the client, still sending, gets a reset, and its TCP
    // stack throws our answer away with it, so it reports EPIPE instead of the reason.
    if (!req.complete) drainThenClose(req, res);
    const text = JSON.stringify(body);
    res.statusCode = body.statusCode;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    // The controller is starting: worth asking again in a moment, not worth failing a CI job.
    if (body.statusCode === 503) res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    res.end(text);
  }
}
