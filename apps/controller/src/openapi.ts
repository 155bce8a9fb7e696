import type { SchemaObject } from '@nestjs/swagger';

/** OpenAPI shapes of libs/contracts/src/rest.ts, written once here so the document matches the contract. */
const labelMap: SchemaObject = { type: 'object', additionalProperties: { type: 'string' } };

export const apiErrorSchema: SchemaObject = {
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string', description: 'The request field at fault, for 400s.' },
  },
};

export const publishFromPathSchema: SchemaObject = {
  type: 'object',
  required: ['path', 'name', 'version'],
  properties: {
    path: { type: 'string', description: "Absolute path of a file or directory on the controller's volume." },
    name: { type: 'string' },
    version: { type: 'string' },
    selector: labelMap,
    metadata: labelMap,
    unpack: { type: 'boolean' },
  },
};

export const publishFormSchema: SchemaObject = {
  type: 'object',
  required: ['file'],
  description: 'multipart/form-data: the fields (or query parameters), then the file part.',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    selector: { type: 'string', description: 'k=v,k2=v2' },
    metadata: { type: 'string', description: 'k=v,k2=v2' },
    filename: { type: 'string', description: "Default: the file part's own file name." },
    unpack: { type: 'boolean' },
    file: { type: 'string', format: 'binary' },
  },
};

const nullableSeconds: SchemaObject = { type: 'number', nullable: true, description: 'Seconds from publish; null until reached.' };

export const releaseStatusSchema: SchemaObject = {
  type: 'object',
  required: ['name', 'version', 'infoHash', 'bytes', 'createdAt', 'selector', 'metadata', 'rollout'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    infoHash: { type: 'string', description: 'v1 info hash, 40 hex digits.' },
    bytes: { type: 'integer' },
    sha256: { type: 'string', description: 'SHA-256 of the artifact, 64 hex digits; signed in the manifest agents check.' },
    createdAt: { type: 'string', format: 'date-time' },
    retiredAt: { type: 'string', format: 'date-time' },
    selector: labelMap,
    metadata: labelMap,
    rollout: {
      type: 'object',
      properties: {
        targeted: { type: 'integer' },
        pending: { type: 'integer' },
        downloading: { type: 'integer' },
        complete: { type: 'integer' },
        failed: { type: 'integer' },
        timeTo50: nullableSeconds,
        timeTo90: nullableSeconds,
        timeTo100: nullableSeconds,
        originBytesSent: { type: 'integer' },
        nodes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              agent: { type: 'string' },
              state: { type: 'string', enum: ['pending', 'downloading', 'complete', 'failed'] },
              verifiedBytes: { type: 'integer' },
              bytesFromOrigin: { type: 'integer' },
              bytesFromPeers: { type: 'integer' },
              error: { type: 'string' },
            },
          },
        },
      },
    },
  },
};

export const agentSummarySchema: SchemaObject = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    labels: labelMap,
    addresses: { type: 'array', items: { type: 'string' } },
    peerPort: { type: 'integer' },
    diskFreeBytes: { type: 'integer' },
    version: { type: 'string' },
    lastSeen: { type: 'string', format: 'date-time' },
    state: { type: 'string', enum: ['active', 'lost'], description: 'lost: silent past the agent timeout; forgotten after the forget time.' },
    releases: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' } } } },
  },
};

export const signingKeySchema: SchemaObject = {
  type: 'object',
  required: ['algorithm', 'keyId', 'publicKey'],
  properties: {
    algorithm: { type: 'string', enum: ['ed25519'] },
    keyId: { type: 'string', description: 'Hex of the first 8 bytes of SHA-256 of the raw public key; agents name keys by it.' },
    publicKey: { type: 'string', description: 'SPKI PEM (-----BEGIN PUBLIC KEY-----).' },
  },
};
