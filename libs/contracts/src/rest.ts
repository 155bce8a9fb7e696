import type { AgentIdentity } from './agent-channel.js';

/**
 * The controller's REST API (/api/v1) as the CLI and dashboards see it. The OpenAPI
 * document at /api/docs describes the same shapes.
 */

export type RolloutNodeState = 'pending' | 'downloading' | 'complete' | 'failed';

export interface RolloutNode {
  agent: string;
  state: RolloutNodeState;
  verifiedBytes: number;
  bytesFromOrigin: number;
  bytesFromPeers: number;
  error?: string;
}

export interface ReleaseStatus {
  name: string;
  version: string;
  infoHash: string;
  bytes: number;
  /** SHA-256 of the artifact as published, which agents check before publishing their copy. */
  sha256?: string;
  createdAt: string;
  retiredAt?: string;
  selector: Record<string, string>;
  metadata: Record<string, string>;
  rollout: {
    targeted: number;
    pending: number;
    downloading: number;
    complete: number;
    failed: number;
    /** Seconds from publish to 50 %, 90 %, 100 % of targeted nodes complete (null until reached). */
    timeTo50: number | null;
    timeTo90: number | null;
    timeTo100: number | null;
    originBytesSent: number;
    nodes: RolloutNode[];
  };
}

/** An agent as the controller lists it: what it said of itself, and when it was last heard from. */
export interface AgentSummary extends AgentIdentity {
  lastSeen: string;
  /**
   * `lost`: silent for longer than the controller's agent timeout; not counted in
   * rollouts, and forgotten (gone from the list) after the longer forget time.
   */
  state: 'active' | 'lost';
  releases: { name: string; version: string; state: string }[];
}

/** Every error body: a code for programs and a message for people. */
export interface ApiError {
  statusCode: number;
  error: string;
  message: string;
  /** The request field at fault, for 400s. */
  field?: string;
}

/**
 * POST /api/v1/releases, streamed form: the artifact is the request body
 * (`Content-Type: application/octet-stream`, never buffered whole) and the release's
 * fields are query parameters. `selector` and `metadata` are `k=v,k2=v2` lists;
 * `filename` names the artifact file on the nodes (default `artifact`).
 */
export interface PublishQuery {
  name: string;
  version: string;
  filename?: string;
  selector?: string;
  metadata?: string;
}

/** POST /api/v1/releases with `Content-Type: application/json`: a file or directory already on the controller's volume. */
export interface PublishFromPath {
  path: string;
  name: string;
  version: string;
  selector?: Record<string, string>;
  metadata?: Record<string, string>;
}

/** GET /api/v1/signing-key: the key agents verify release manifests with (`--trust-key`). */
export interface SigningKeyInfo {
  algorithm: 'ed25519';
  keyId: string;
  /** SPKI PEM. */
  publicKey: string;
}

/**
 * The content type of a publish whose digests come ahead of its bytes: the body is the
 * SHA-1 of every piece (20 bytes each), then the SHA-256 of every piece (32 bytes each),
 * then the artifact; headers X-Swarmship-Size (the artifact's bytes), -Piece-Length and
 * -Sha256 (the artifact's, hex) describe it. The controller makes the torrent from the
 * digests before the first byte of the artifact, and the fleet starts while the rest
 * arrives (docs/decisions/0016).
 */
export const ANNOUNCED_UPLOAD_TYPE = 'application/vnd.swarmship.pieces-first';

/** Digest bytes per piece at the start of such a body. */
export const DIGEST_BYTES_PER_PIECE = 20 + 32;
