/**
 * libs/signing: `decodeManifest` and `verifyManifest` on release manifests broken at the
 * byte level (canonical bencode bent: keys out of order, lengths inflated, integers with
 * leading zeros) and at the field level (a field dropped, retyped, renamed, a hash of the
 * wrong length, an `unpack` that is not 1), with signatures that are right, flipped,
 * made by an untrusted key, random or of the wrong length. A refusal is a ManifestError,
 * never another error; a manifest is accepted only when a trusted key signed exactly
 * those bytes, and what is accepted is within the manifest's rules.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { encode, type Encodable } from '../../../libs/bencode/src/index.js';
import { generateSigningKey, keyIdOf, type TrustedKey } from '../../../libs/signing/src/keys.js';
import { MANIFEST_TYPE, ManifestError, decodeManifest, encodeManifest, verifyManifest, type ReleaseManifest } from '../../../libs/signing/src/manifest.js';
import { PROTOTYPE_KEYS, mutatedBytes, mutatedTree, type Tree } from '../mutate.js';
import { check, expectTyped, type FuzzTarget, type Outcome } from '../runner.js';
import { BENCODE_TOKENS, bencodeLeaf } from './bencode.js';

const hex = (length: number) => fc.uint8Array({ minLength: length / 2, maxLength: length / 2 }).map((u) => Buffer.from(u).toString('hex'));

const manifestSpec = fc.record({
  name: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._+-]{0,20}$/), fc.constantFrom('app', 'x'.repeat(256), 'é', '日本')),
  version: fc.oneof(fc.stringMatching(/^[0-9][0-9a-z.+-]{0,12}$/), fc.constantFrom('1', 'v'.repeat(256))),
  infoHash: hex(40),
  sha256: hex(64),
  size: fc.oneof(fc.nat(), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER)),
  created: fc.oneof(fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('', 'c'.repeat(64))),
  unpack: fc.boolean(),
  piecesSha256: fc.option(hex(64), { nil: undefined }),
});

type ManifestSpec = typeof manifestSpec extends fc.Arbitrary<infer T> ? T : never;

/** The manifest as it is signed: `unpack` is written only when true. */
function manifestDict(s: ManifestSpec): Record<string, Encodable> {
  const d: Record<string, Encodable> = { type: MANIFEST_TYPE, name: s.name, version: s.version, infoHash: s.infoHash, sha256: s.sha256, size: s.size, created: s.created };
  if (s.unpack) d['unpack'] = 1;
  if (s.piecesSha256 !== undefined) d['piecesSha256'] = s.piecesSha256;
  return d;
}

const MANIFEST_KEYS = ['type', 'name', 'version', 'infoHash', 'sha256', 'size', 'created', 'unpack', 'piecesSha256'];

const manifestLeaf: fc.Arbitrary<Tree> = fc.oneof(
  fc.constantFrom<Tree>(
    -1, 0, 1, 2, 2 ** 53, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, '', 'swarmship-release/2', MANIFEST_TYPE, 'A'.repeat(40), 'a'.repeat(39), 'a'.repeat(41),
    'g'.repeat(40), 'a'.repeat(64), 'F'.repeat(64), 'x'.repeat(257), 'c'.repeat(65), Buffer.alloc(5000, 0x61), Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), [], {},
  ),
  bencodeLeaf,
);

const manifestKey = fc.oneof(fc.constantFrom(...MANIFEST_KEYS), fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 6 }));

/** Encodes a mutated tree; a mutation that left nothing encodable gives empty bytes. */
function encodeTree(t: Tree): Buffer {
  try {
    return encode(t as Encodable);
  } catch {
    return Buffer.alloc(0);
  }
}

/** Which signature goes with the bytes: ours over them, ours with a bit flipped, an untrusted key's, or any bytes. */
type SignatureChoice = { kind: 'ours' } | { kind: 'flipped'; bit: number } | { kind: 'untrusted' } | { kind: 'bytes'; bytes: Buffer };

const signatureChoice: fc.Arbitrary<SignatureChoice> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'ours' as const }) },
  { weight: 1, arbitrary: fc.nat({ max: 511 }).map((bit) => ({ kind: 'flipped' as const, bit })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'untrusted' as const }) },
  { weight: 1, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ minLength: 64, maxLength: 64 })).map((u) => ({ kind: 'bytes' as const, bytes: Buffer.from(u) })) },
);

type ManifestInput = { bytes: Buffer; spec?: ManifestSpec; signature: SignatureChoice; claim: 'ours' | 'other' | 'none' };

const validBytes = manifestSpec.map((spec) => ({ bytes: encode(manifestDict(spec)), spec }));

const manifestBytes: fc.Arbitrary<{ bytes: Buffer; spec?: ManifestSpec }> = fc.oneof(
  { weight: 2, arbitrary: validBytes },
  { weight: 4, arbitrary: mutatedTree(manifestSpec.map(manifestDict), manifestLeaf, manifestKey).map((t) => ({ bytes: encodeTree(t) })) },
  { weight: 4, arbitrary: mutatedBytes(validBytes.map((v) => v.bytes), [...BENCODE_TOKENS, ...MANIFEST_KEYS.map((k) => `${k.length}:${k}`), '6:unpacki0e', '6:unpacki2e', '4:sizei-1e']).map((bytes) => ({ bytes })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }).map((u) => ({ bytes: Buffer.from(u) })) },
);

const manifestInput: fc.Arbitrary<ManifestInput> = fc
  .tuple(manifestBytes, signatureChoice, fc.constantFrom('ours' as const, 'other' as const, 'none' as const))
  .map(([b, signature, claim]) => ({ ...b, signature, claim }));

/** The rules every accepted manifest keeps. */
function checkManifest(m: ReleaseManifest): void {
  check(typeof m.name === 'string' && m.name.length >= 1 && m.name.length <= 256, `name of ${String(m.name?.length)} characters`);
  check(typeof m.version === 'string' && m.version.length >= 1 && m.version.length <= 256, `version of ${String(m.version?.length)} characters`);
  check(/^[0-9a-f]{40}$/.test(m.infoHash), `infoHash ${JSON.stringify(m.infoHash)}`);
  check(/^[0-9a-f]{64}$/.test(m.sha256), `sha256 ${JSON.stringify(m.sha256)}`);
  check(Number.isSafeInteger(m.size) && m.size >= 0, `size ${m.size}`);
  check(typeof m.created === 'string' && m.created.length <= 64, 'created');
  check(typeof m.unpack === 'boolean', `unpack ${String(m.unpack)}`);
  check(m.piecesSha256 === undefined || /^[0-9a-f]{64}$/.test(m.piecesSha256), `piecesSha256 ${JSON.stringify(m.piecesSha256)}`);
  // What was read can be signed again, and reads back the same.
  check(JSON.stringify(decodeManifest(encodeManifest(m))) === JSON.stringify(m), 'the manifest does not survive encoding again');
}

export const manifestTarget: FuzzTarget<ManifestInput> = {
  name: 'manifest',
  about: 'decodeManifest, verifyManifest (release signing)',
  arbitrary: manifestInput,
  setup: () => {
    const { key } = generateSigningKey();
    const trusted: TrustedKey[] = [{ publicKey: key.publicKey, keyId: key.keyId, source: 'fuzz' }];
    const untrusted = generateKeyPairSync('ed25519');
    const untrustedId = keyIdOf(untrusted.publicKey);
    return {
      check({ bytes, spec, signature, claim }: ManifestInput): Outcome {
        const decoded = expectTyped(() => decodeManifest(bytes), ManifestError);
        if ('rejected' in decoded) check(spec === undefined, () => `a valid manifest was refused: ${decoded.message}`);
        else {
          checkManifest(decoded.value);
          if (spec) check(sameManifest(decoded.value, spec), 'the manifest read differs from the one written');
        }

        let sig: Buffer;
        switch (signature.kind) {
          case 'ours':
            sig = sign(null, bytes, key.privateKey);
            break;
          case 'flipped':
            sig = sign(null, bytes, key.privateKey);
            sig.writeUInt8(sig.readUInt8(signature.bit >> 3) ^ (1 << (signature.bit & 7)), signature.bit >> 3);
            break;
          case 'untrusted':
            sig = sign(null, bytes, untrusted.privateKey);
            break;
          case 'bytes':
            sig = signature.bytes;
            break;
        }
        const claimed = claim === 'ours' ? key.keyId : claim === 'other' ? untrustedId : undefined;
        const verified = expectTyped(() => verifyManifest(bytes, sig, trusted, claimed), ManifestError);
        // Only our key's own signature over these very bytes, on a manifest that reads, gets through.
        const shouldPass = signature.kind === 'ours' && !('rejected' in decoded);
        if ('rejected' in verified) {
          check(!shouldPass, () => `a manifest signed by the trusted key was refused: ${verified.message}`);
          return verified.rejected;
        }
        check(shouldPass, () => `a manifest was accepted with a ${signature.kind} signature`);
        check(verified.value.key.keyId === key.keyId, 'accepted under another key');
        check(!('rejected' in decoded) && JSON.stringify(verified.value.manifest) === JSON.stringify(decoded.value), 'verifyManifest read another manifest than decodeManifest');
        return 'accepted';
      },
    };
  },
};

function sameManifest(m: ReleaseManifest, s: ManifestSpec): boolean {
  return m.name === s.name && m.version === s.version && m.infoHash === s.infoHash && m.sha256 === s.sha256 && m.size === s.size && m.created === s.created && m.unpack === s.unpack;
}
