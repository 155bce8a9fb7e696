import { createHash, sign, verify } from 'node:crypto';
import { decodeStrict } from '../../bencode/src/decode.js';
import { encode } from '../../bencode/src/encode.js';
import type { BencodeDict } from '../../bencode/src/value.js';
import type { SigningKey, TrustedKey } from './keys.js';

/**
 * What a controller vouches for when it signs a release: the torrent (by info hash), the
 * whole artifact (by SHA-256 and size) that name@version stands for, and whether agents
 * unpack it.
 */
export interface ReleaseManifest {
  name: string;
  version: string;
  /** The torrent's info hash, 40 lower-case hex digits. */
  infoHash: string;
  /** SHA-256 of the artifact: its files' bytes in the torrent's order (the file itself for one file). */
  sha256: string;
  /** Bytes of the artifact. */
  size: number;
  /** When the release was published (ISO 8601). */
  created: string;
  /**
   * Agents unpack the artifact (a .tar/.tar.gz) once it is verified. Encoded only when
   * true: a manifest without the key (every one signed before the key existed) means
   * false, and a release that is not unpacked has one encoding, old or new.
   */
  unpack: boolean;
  /**
   * SHA-256 (64 lower-case hex digits) of the torrent's `pieces sha256` list: each
   * piece's SHA-256, 32 bytes a piece. With it an agent verifies every piece by SHA-256
   * as it arrives and needs no pass over the whole artifact at the end. Absent in
   * manifests signed before it existed (and then agents check `sha256` at the end).
   */
  piecesSha256?: string;
}

/** A manifest as it travels: the exact bytes signed, the signature and the signer's key id. */
export interface SignedManifest {
  manifest: Buffer;
  signature: Buffer;
  keyId: string;
}

/** Tells signed manifests from any other bytes an Ed25519 key might sign. */
export const MANIFEST_TYPE = 'swarmship-release/1';
export const SIGNATURE_BYTES = 64;
const MAX_MANIFEST_BYTES = 4096;

export type ManifestErrorCode =
  /** Not a manifest: not canonical bencode, a field missing or of the wrong form. */
  | 'malformed'
  /** The signature is not 64 bytes. */
  | 'signature-length'
  /** No trusted key verifies the signature. */
  | 'bad-signature'
  /** A valid manifest for something else: name, version, info hash, size or unpack differ. */
  | 'mismatch';

export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    readonly code: ManifestErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The canonical bytes of `m` (bencode: keys sorted, one encoding only); what is signed. */
export function encodeManifest(m: ReleaseManifest): Buffer {
  checkFields(m);
  // `unpack` is left out when false (encode drops undefined entries).
  return encode({
    type: MANIFEST_TYPE,
    name: m.name,
    version: m.version,
    infoHash: m.infoHash,
    sha256: m.sha256,
    size: m.size,
    created: m.created,
    unpack: m.unpack ? 1 : undefined,
    piecesSha256: m.piecesSha256,
  });
}

/** Reads canonical manifest bytes; unknown keys are allowed (later versions may add some) but every known one must be right. */
export function decodeManifest(bytes: Buffer): ReleaseManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new ManifestError('malformed', `manifest is ${bytes.length} bytes; at most ${MAX_MANIFEST_BYTES}`);
  let doc;
  try {
    doc = decodeStrict(bytes);
  } catch (err) {
    throw new ManifestError('malformed', `manifest is not canonical bencode: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || Buffer.isBuffer(doc) || Array.isArray(doc)) throw new ManifestError('malformed', 'manifest is not a dictionary');
  const d = doc as BencodeDict;
  const text = (k: string): string => {
    const v = d[k];
    if (!Buffer.isBuffer(v)) throw new ManifestError('malformed', `manifest field '${k}' is missing or not a string`);
    return v.toString('utf8');
  };
  if (text('type') !== MANIFEST_TYPE) throw new ManifestError('malformed', `manifest type '${text('type')}' is not ${MANIFEST_TYPE}`);
  const size = d['size'];
  if (typeof size !== 'number') throw new ManifestError('malformed', "manifest field 'size' is missing or not an integer");
  // Absent is false; present it must be 1, so that false has one encoding.
  const unpack = d['unpack'];
  if (unpack !== undefined && unpack !== 1) throw new ManifestError('malformed', "manifest field 'unpack' must be 1 when present (absent means false)");
  const m: ReleaseManifest = { name: text('name'), version: text('version'), infoHash: text('infoHash'), sha256: text('sha256'), size, created: text('created'), unpack: unpack === 1 };
  if (d['piecesSha256'] !== undefined) m.piecesSha256 = text('piecesSha256');
  checkFields(m);
  return m;
}

export function signManifest(m: ReleaseManifest, key: SigningKey): SignedManifest {
  const manifest = encodeManifest(m);
  return { manifest, signature: sign(null, manifest, key.privateKey), keyId: key.keyId };
}

/**
 * The manifest in `bytes` if one of `trusted` signed exactly these bytes; else a
 * ManifestError saying which keys were tried. `claimedKeyId` (what the sender says
 * signed it, unauthenticated) only makes the message more useful.
 */
export function verifyManifest(bytes: Buffer, signature: Buffer, trusted: readonly TrustedKey[], claimedKeyId?: string): { manifest: ReleaseManifest; key: TrustedKey } {
  if (signature.length !== SIGNATURE_BYTES) throw new ManifestError('signature-length', `the signature is ${signature.length} bytes; an Ed25519 signature is ${SIGNATURE_BYTES}`);
  const key = trusted.find((k) => verify(null, bytes, k.publicKey, signature));
  if (!key) {
    const ids = trusted.map((k) => k.keyId).join(', ') || 'none';
    const claim = claimedKeyId && !trusted.some((k) => k.keyId === claimedKeyId) ? `it names key ${claimedKeyId}, which is not trusted here; ` : '';
    throw new ManifestError('bad-signature', `the release's manifest signature does not verify: ${claim}trusted keys: ${ids}`);
  }
  return { manifest: decodeManifest(bytes), key };
}

/** What a manifest's `piecesSha256` holds for a torrent's `pieces sha256` list: its SHA-256, in hex. */
export function piecesSha256Digest(list: Uint8Array): string {
  return createHash('sha256').update(list).digest('hex');
}

/**
 * Why `m` does not describe the release an agent was given (name, version, info hash,
 * size, unpack, piece SHA-256s), or undefined when it does.
 */
export function manifestMismatch(
  m: ReleaseManifest,
  given: { name: string; version: string; infoHash: string; size: number; unpack: boolean; pieceSha256?: Buffer | undefined },
): string | undefined {
  if (m.name !== given.name || m.version !== given.version) return `the signed manifest is for ${m.name}@${m.version}, not ${given.name}@${given.version}`;
  if (m.infoHash !== given.infoHash.toLowerCase()) return `the torrent's info hash ${given.infoHash} is not the signed manifest's ${m.infoHash}`;
  if (m.size !== given.size) return `the torrent holds ${given.size} bytes, the signed manifest ${m.size}`;
  if (m.unpack !== given.unpack) return given.unpack ? 'the release says to unpack the artifact, the signed manifest does not' : 'the signed manifest says to unpack the artifact, the release does not';
  if (m.piecesSha256 !== undefined) {
    if (!given.pieceSha256) return "the signed manifest vouches for the pieces' SHA-256s, but the torrent has none";
    const got = piecesSha256Digest(given.pieceSha256);
    if (got !== m.piecesSha256) return `the torrent's piece SHA-256s (${got}) are not the signed manifest's (${m.piecesSha256})`;
  }
  return undefined;
}

function checkFields(m: ReleaseManifest): void {
  const bad = (field: string, what: string) => new ManifestError('malformed', `manifest field '${field}' ${what}`);
  if (m.name === '' || m.name.length > 256) throw bad('name', 'must be 1 to 256 characters');
  if (m.version === '' || m.version.length > 256) throw bad('version', 'must be 1 to 256 characters');
  if (!/^[0-9a-f]{40}$/.test(m.infoHash)) throw bad('infoHash', 'must be 40 lower-case hex digits');
  if (!/^[0-9a-f]{64}$/.test(m.sha256)) throw bad('sha256', 'must be 64 lower-case hex digits');
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw bad('size', 'must be a whole number of bytes');
  if (m.created.length > 64) throw bad('created', 'must be a timestamp');
  if (typeof m.unpack !== 'boolean') throw bad('unpack', 'must be true or false');
  if (m.piecesSha256 !== undefined && !/^[0-9a-f]{64}$/.test(m.piecesSha256)) throw bad('piecesSha256', 'must be 64 lower-case hex digits');
}
