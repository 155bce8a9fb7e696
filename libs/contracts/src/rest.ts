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
