import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ANNOUNCED_UPLOAD_TYPE, type ReleaseStatus } from '../../../libs/contracts/src/rest.js';
import { badRequest, ControllerError, MAX_STATUS_WAIT_MS, type ControllerCore, type RawPublishFields } from '../../../libs/controller-core/src/index.js';
import { CORE } from './tokens.js';
import { apiErrorSchema, publishFormSchema, publishFromPathSchema, releaseStatusSchema } from './openapi.js';

type Request = IncomingMessage & { query?: Record<string, unknown> };

const FIELD_HEADER = 'x-swarmship-';

@ApiTags('releases')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'No bearer token, or a wrong one.', schema: apiErrorSchema })
@ApiResponse({ status: 503, description: 'The controller is starting and has not loaded its stored releases yet; retry after Retry-After seconds.', schema: apiErrorSchema })
@Controller('releases')
export class ReleasesController {
  constructor(@Inject(CORE) private readonly core: ControllerCore) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Publish a release',
    description:
      'Either the artifact itself as the request body (application/octet-stream, streamed to disk, never held in memory) with the ' +
      'release fields as query parameters or X-Swarmship-<Field> headers; or multipart/form-data with the fields as form fields ' +
      'before the file part (also streamed); or JSON naming a file or directory already on the ' +
      "controller's volume. The controller makes the torrent, lists it with its tracker and starts seeding it. " +
      `An uploader that hashes first sends ${ANNOUNCED_UPLOAD_TYPE}: the body opens with the SHA-1 of every piece (20 bytes each), ` +
      'then the SHA-256 of every piece (32 bytes each), then the artifact, with X-Swarmship-Size (the artifact\'s bytes), ' +
      "X-Swarmship-Piece-Length and X-Swarmship-Sha256 (the artifact's, hex) headers: the release is listed and agents start " +
      'as soon as the digests are in, each piece is seeded once it has landed and matches them, and the answer comes when ' +
      'the last has. If the bytes then fail, the release is withdrawn (400) and nothing of it is kept.',
  })
  @ApiConsumes('application/octet-stream', ANNOUNCED_UPLOAD_TYPE, 'multipart/form-data', 'application/json')
  @ApiBody({ schema: { oneOf: [{ type: 'string', format: 'binary' }, publishFormSchema, publishFromPathSchema] } })
  @ApiQuery({ name: 'name', required: false, description: 'Release name (streamed form).' })
  @ApiQuery({ name: 'version', required: false, description: 'Release version (streamed form).' })
  @ApiQuery({ name: 'filename', required: false, description: "The artifact's file name on the nodes; default 'artifact'." })
  @ApiQuery({ name: 'selector', required: false, description: 'Node labels the release is for: k=v,k2=v2 (default every node).' })
  @ApiQuery({ name: 'metadata', required: false, description: 'Free-form k=v,k2=v2 pairs passed to agents.' })
  @ApiQuery({ name: 'unpack', required: false, description: 'Agents unpack a .tar/.tar.gz after verifying it.' })
  @ApiResponse({ status: 201, description: 'Published; the release with its (empty) rollout.', schema: releaseStatusSchema })
  @ApiResponse({ status: 400, description: 'A field is missing or malformed; `field` names it.', schema: apiErrorSchema })
  @ApiResponse({ status: 409, description: 'The name and version exist already, or are being published right now.', schema: apiErrorSchema })
  @ApiResponse({ status: 413, description: 'A JSON body over 64 KiB (artifacts themselves have no size limit but the free space).', schema: apiErrorSchema })
  @ApiResponse({ status: 507, description: 'The artifact does not fit on the controller; nothing was registered.', schema: apiErrorSchema })
  async publish(@Req() req: Request): Promise<ReleaseStatus> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json') {
      const body = await readJsonObject(req);
      return this.core.publishPath(body as RawPublishFields, body['path']);
    }
    // Every uploaded form takes the release's fields from the query or X-Swarmship-<Field> headers.
    const field = (n: string): unknown => req.query?.[n] ?? req.headers[FIELD_HEADER + n];
    const fields: RawPublishFields = { name: field('name'), version: field('version'), selector: field('selector'), metadata: field('metadata'), unpack: field('unpack') };
    const length = req.headers['content-length'];
    const declared = length === undefined ? undefined : Number(length);
    if (type === 'application/octet-stream' || type === '') return this.core.publishStream(fields, field('filename'), req, declared);
    if (type === ANNOUNCED_UPLOAD_TYPE) {
      const claim = { size: field('size'), pieceLength: field('piece-length'), sha256: field('sha256'), contentLength: declared };
      return this.core.publishAnnounced(fields, field('filename'), req as AsyncIterable<Buffer>, claim);
    }
    if (type === 'multipart/form-data') {
      return this.core.publishMultipart({ ...fields, filename: field('filename') }, req as AsyncIterable<Buffer>, String(req.headers['content-type']), declared);
    }
    throw badRequest('Content-Type', `'${type}' is not accepted: send the artifact as application/octet-stream, ${ANNOUNCED_UPLOAD_TYPE} or multipart/form-data, or JSON {"path": …}`);
  }

  @Get()
  @ApiOperation({ summary: 'Every release, live and retired, with its rollout' })
  @ApiResponse({ status: 200, schema: { type: 'array', items: releaseStatusSchema } })
  list(): ReleaseStatus[] {
    return this.core.list();
  }

  @Get(':name/:version')
  @ApiOperation({ summary: "One release's rollout: nodes targeted, downloading, complete, failed; bytes by source; time to 50/90/100 %" })
  @ApiParam({ name: 'name' })
  @ApiParam({ name: 'version' })
  @ApiHeader({ name: 'If-None-Match', required: false, description: 'The ETag of the rollout last seen: answered 304 if it has not changed.' })
  @ApiHeader({ name: 'Prefer', required: false, description: 'wait=N (seconds, at most 30): with If-None-Match, hold the answer until an agent report changes the rollout or N seconds pass.' })
  @ApiResponse({ status: 200, description: 'The release; its ETag changes whenever a targeted node\'s state or bytes do.', schema: releaseStatusSchema })
  @ApiResponse({ status: 304, description: 'Unchanged since If-None-Match (after waiting, with Prefer: wait).' })
  @ApiResponse({ status: 404, description: 'No such release.', schema: apiErrorSchema })
  async status(@Param('name') name: string, @Param('version') version: string, @Req() req: Request, @Res() res: ServerResponse): Promise<void> {
    const raw = req.headers['if-none-match'];
    const known = Array.isArray(raw) ? raw[0] : raw;
    const prefer = req.headers.prefer;
    const waitSeconds = preferredWaitSeconds(Array.isArray(prefer) ? prefer.join(',') : prefer);
    const { status, tag } = await this.core.statusWhenChanged(name, version, known, known !== undefined ? waitSeconds * 1000 : 0);
    res.setHeader('ETag', tag);
    res.setHeader('Cache-Control', 'no-cache');
    if (known !== undefined && waitSeconds > 0) res.setHeader('Preference-Applied', `wait=${waitSeconds}`);
    if (known === tag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const body = JSON.stringify(status);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  @Get(':name/:version/torrent')
  @ApiOperation({ summary: "The release's .torrent" })
  @ApiParam({ name: 'name' })
  @ApiParam({ name: 'version' })
  @ApiProduces('application/x-bittorrent')
  @ApiResponse({ status: 200, description: 'The bencoded metainfo.' })
  @ApiResponse({ status: 404, description: 'No such release.', schema: apiErrorSchema })
  torrent(@Param('name') name: string, @Param('version') version: string, @Res() res: ServerResponse): void {
    const { fileName, torrent } = this.core.torrent(name, version);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/x-bittorrent');
    res.setHeader('Content-Disposition', `attachment; filename="${fileName}"`);
    res.setHeader('Content-Length', torrent.length);
    res.end(torrent);
  }

  @Delete(':name/:version')
  @ApiOperation({ summary: 'Retire a release: the tracker and origin drop it, agents delete it after the grace period' })
  @ApiParam({ name: 'name' })
  @ApiParam({ name: 'version' })
  @ApiResponse({ status: 200, schema: releaseStatusSchema })
  @ApiResponse({ status: 404, description: 'No such release.', schema: apiErrorSchema })
  retire(@Param('name') name: string, @Param('version') version: string): Promise<ReleaseStatus> {
    return this.core.retire(name, version);
  }
}

/** `Prefer: wait=N` (RFC 7240) in seconds, capped at what the controller holds a read for; 0 without one. */
export function preferredWaitSeconds(prefer: string | undefined): number {
  const m = /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(prefer ?? '');
  return m ? Math.min(Number(m[1]), MAX_STATUS_WAIT_MS / 1000) : 0;
}

/** A JSON publish names a path: a few hundred bytes. More than this is not one. */
const MAX_JSON_BYTES = 64 * 1024;

/**
 * Reads a JSON body here, after the auth guard, rather than in a body-parser middleware
 * that runs before it: a caller without a token learns nothing, not even a parse error.
 */
async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const tooLarge = () => new ControllerError('too-large', `body: a JSON publish is at most ${MAX_JSON_BYTES} bytes; upload artifacts as application/octet-stream`, 'body');
  // Refused before a byte is read when the length is declared; counted as it comes when not.
  if (Number(req.headers['content-length'] ?? 0) > MAX_JSON_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw badRequest('body', `not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('body', 'expected a JSON object');
  return value as Record<string, unknown>;
}
