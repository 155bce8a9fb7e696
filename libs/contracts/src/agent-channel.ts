/**
 * The agent channel: what agents and the controller say to each other over
 * @nestjs/microservices (TCP transport by default). Level-triggered: an agent reports
 * everything it holds on every sync, the controller answers with everything the agent
 * should hold, so any message may be lost, repeated or reordered and the fleet still
 * converges. Plain data only (JSON over the transport).
 */

/** Message patterns. */
export const AgentPatterns = {
  /** Request/response, long-polled: AgentSyncRequest → AgentSyncResponse. */
  sync: 'swarmship.agent.sync',
  /** Request/response, cheap and frequent while downloading: AgentProgressReport → { ok: true }. */
  progress: 'swarmship.agent.progress',
} as const;

/** Who an agent is and what it can offer. */
export interface AgentIdentity {
  /** Node name, unique in the fleet (Kubernetes node name by default). */
  name: string;
  labels: Record<string, string>;
  /** Addresses peers can reach this agent on (its advertised address first). */
  addresses: string[];
  /** TCP port its engine listens on for peers. */
  peerPort: number;
  /** Free bytes on the volume holding its data dir. */
  diskFreeBytes: number;
  version: string;
}

export type HoldingState = 'pending' | 'downloading' | 'verifying' | 'publishing' | 'complete' | 'failed' | 'removing';

/** One release as an agent holds it. */
export interface Holding {
  name: string;
  version: string;
  infoHash: string;
  state: HoldingState;
  /** Bytes of verified pieces. */
  verifiedBytes: number;
  totalBytes: number;
  /** Payload bytes received from the origin (the controller's engine) and from other agents. */
  bytesFromOrigin: number;
  bytesFromPeers: number;
  bytesSent: number;
  /** Set when state is 'failed': why, in words a person can act on ("no space left on device"). */
  error?: string;
  /** Milliseconds since the epoch when the copy was published on the node. */
  completedAt?: number;
}

export interface AgentSyncRequest {
  /** The agent token (shared secret); the controller refuses the call without it. */
  token: string;
  agent: AgentIdentity;
  holdings: Holding[];
  /**
   * The desired-state revision the agent last received. The controller answers at once
   * when its revision differs, else holds the call until it changes or `waitMs` passes.
   */
  knownRevision: number;
  waitMs: number;
}

/** A release an agent should hold. */
export interface DesiredRelease {
  name: string;
  version: string;
  infoHash: string;
  /** The .torrent, base64. */
  torrent: string;
  /** Unpack a .tar/.tar.gz artifact after verification; agents refuse it unless the signed manifest says the same. */
  unpack?: boolean;
  metadata?: Record<string, string>;
  /**
   * The release's signed manifest, base64: canonical bencode of name, version, info
   * hash, SHA-256 and size of the artifact, and unpack (libs/signing). Agents refuse a
   * release whose manifest is missing, not signed by a key they trust, or names other
   * content or another unpack.
   */
  manifest?: string;
  /** Ed25519 signature of the manifest bytes, base64 (64 bytes). */
  signature?: string;
  /** Id of the key that signed it (a hint for messages; the signature is what counts). */
  signingKey?: string;
}

export interface AgentSyncResponse {
  revision: number;
  /** Everything this agent should hold now; anything else it holds is retired. */
  desired: DesiredRelease[];
  /** The controller's tracker announce URL and its origin engine's peer address. */
  announceUrl: string;
  origin: { host: string; port: number };
  /** Seconds a retired release stays before agents delete it. */
  retireGraceSeconds: number;
}

export interface AgentProgressReport {
  token: string;
  agentName: string;
  holdings: Holding[];
}

/** What the controller answers when it refuses a call. */
export interface AgentChannelError {
  error: 'unauthorized' | 'bad-request';
  message: string;
}
