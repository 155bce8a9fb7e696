import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encode } from '../../bencode/src/encode.js';
import {
  decodeManifest,
  encodeManifest,
  generateSigningKey,
  ManifestError,
  manifestMismatch,
  parsePrivateKey,
  parsePublicKeys,
  signManifest,
  SigningKeyError,
  verifyManifest,
  type ReleaseManifest,
  type TrustedKey,
} from '../src/index.js';

const manifest: ReleaseManifest = {
  name: 'app',
  version: '1.2.3',
  infoHash: 'a'.repeat(40),
  sha256: 'b'.repeat(64),
  size: 123_456,
  created: '2030-01-02T03:04:05.000Z',
  unpack: false,
};

const { key, privatePem } = generateSigningKey();
const trusted: TrustedKey[] = parsePublicKeys(key.publicPem, 'test key');

function refusal(run: () => unknown): ManifestError {
  try {
    run();
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('release manifests', () => {
  it('verify with the signer\'s public key and read back as signed', () => {
    const signed = signManifest(manifest, key);
    expect(signed.signature).toHaveLength(64);
    expect(signed.keyId).toBe(trusted[0]!.keyId);
    const { manifest: got, key: by } = verifyManifest(signed.manifest, signed.signature, trusted);
    expect(got).toEqual(manifest);
    expect(by.keyId).toBe(key.keyId);
  });

  it('are canonical bencode with sorted keys and a type tag, so one manifest has one encoding', () => {
    const bytes = encodeManifest(manifest);
    expect(bytes.toString('latin1')).toMatch(/^d7:created24:.*4:name3:app.*6:sha25664:.*4:sizei123456e4:type19:swarmship-release\/17:version5:1\.2\.3e$/);
    expect(encodeManifest(decodeManifest(bytes)).equals(bytes)).toBe(true);
    const unsorted = Buffer.from(bytes.toString('latin1').replace('7:created24:2030-01-02T03:04:05.000Z', '').replace(/e$/, '7:created24:2030-01-02T03:04:05.000Ze'), 'latin1');
    expect(refusal(() => decodeManifest(unsorted)).code).toBe('malformed');
  });

  it.each(Object.keys(manifest) as (keyof ReleaseManifest)[])('are refused when %s was changed after signing', (field) => {
    const signed = signManifest(manifest, key);
    const changed = { ...manifest };
    if (field === 'size') changed.size = manifest.size + 1;
    else if (field === 'infoHash') changed.infoHash = 'c'.repeat(40);
    else if (field === 'sha256') changed.sha256 = 'd'.repeat(64);
    else if (field === 'unpack') changed.unpack = !manifest.unpack;
    else changed[field] = `${manifest[field]}x`;
    const err = refusal(() => verifyManifest(encodeManifest(changed), signed.signature, trusted));
    expect(err.code).toBe('bad-signature');
  });

  it('are refused when one bit of the signature is flipped', () => {
    const signed = signManifest(manifest, key);
    signed.signature[10]! ^= 1;
    expect(refusal(() => verifyManifest(signed.manifest, signed.signature, trusted)).code).toBe('bad-signature');
  });

  it('are refused when signed by a key that is not trusted, naming the keys', () => {
    const other = generateSigningKey().key;
    const signed = signManifest(manifest, other);
    const err = refusal(() => verifyManifest(signed.manifest, signed.signature, trusted, signed.keyId));
    expect(err.code).toBe('bad-signature');
    expect(err.message).toContain(`it names key ${other.keyId}, which is not trusted here`);
    expect(err.message).toContain(`trusted keys: ${key.keyId}`);
    expect(refusal(() => verifyManifest(signed.manifest, signed.signature, [])).message).toContain('trusted keys: none');
  });

  it('verify with any one of several trusted keys, for rotation', () => {
    const next = generateSigningKey().key;
    const both = [...trusted, ...parsePublicKeys(next.publicPem, 'next')];
    const signed = signManifest(manifest, next);
    expect(verifyManifest(signed.manifest, signed.signature, both).key.source).toBe('next');
  });

  it.each([0, 63, 65, 128])('refuse a %i-byte signature with a typed error', (length) => {
    const signed = signManifest(manifest, key);
    const err = refusal(() => verifyManifest(signed.manifest, Buffer.alloc(length), trusted));
    expect(err).toBeInstanceOf(ManifestError);
    expect(err.code).toBe('signature-length');
  });

  it('refuse to encode or decode fields of the wrong form', () => {
    expect(refusal(() => encodeManifest({ ...manifest, infoHash: 'A'.repeat(40) })).code).toBe('malformed');
    expect(refusal(() => encodeManifest({ ...manifest, sha256: 'b'.repeat(63) })).code).toBe('malformed');
    expect(refusal(() => encodeManifest({ ...manifest, size: -1 })).code).toBe('malformed');
    const { unpack: _unpack, ...fields } = manifest;
    expect(refusal(() => decodeManifest(encode({ ...fields, type: 'something-else' }))).message).toMatch(/type 'something-else'/);
    expect(refusal(() => decodeManifest(encode({ ...fields, type: 'swarmship-release/1', version: undefined }))).message).toMatch(/'version' is missing/);
    expect(refusal(() => decodeManifest(Buffer.from('not bencode'))).code).toBe('malformed');
  });

  it('say which field differs from the release they were sent with', () => {
    const given = { name: 'app', version: '1.2.3', infoHash: 'a'.repeat(40), size: 123_456, unpack: false };
    expect(manifestMismatch(manifest, given)).toBeUndefined();
    expect(manifestMismatch(manifest, { ...given, infoHash: 'e'.repeat(40) })).toMatch(/info hash e{40} is not the signed manifest's a{40}/);
    expect(manifestMismatch(manifest, { ...given, version: '2' })).toMatch(/for app@1\.2\.3, not app@2/);
    expect(manifestMismatch(manifest, { ...given, size: 1 })).toMatch(/holds 1 bytes/);
    // Unpack added to a release signed as an opaque file, or stripped from one signed to be unpacked.
    expect(manifestMismatch(manifest, { ...given, unpack: true })).toBe('the release says to unpack the artifact, the signed manifest does not');
    expect(manifestMismatch({ ...manifest, unpack: true }, given)).toBe('the signed manifest says to unpack the artifact, the release does not');
    expect(manifestMismatch({ ...manifest, unpack: true }, { ...given, unpack: true })).toBeUndefined();
  });

  it("vouch for the torrent's piece SHA-256s by their SHA-256, carried only when the controller made them", () => {
    const list = Buffer.alloc(3 * 32, 7);
    const withPieces: ReleaseManifest = { ...manifest, piecesSha256: createHash('sha256').update(list).digest('hex') };
    const signed = signManifest(withPieces, key);
    expect(verifyManifest(signed.manifest, signed.signature, trusted).manifest).toEqual(withPieces);
    expect(encodeManifest(manifest).includes('piecesSha256')).toBe(false);
    expect(refusal(() => encodeManifest({ ...withPieces, piecesSha256: 'X'.repeat(64) })).code).toBe('malformed');
    const given = { name: 'app', version: '1.2.3', infoHash: 'a'.repeat(40), size: 123_456, unpack: false };
    expect(manifestMismatch(withPieces, { ...given, pieceSha256: list })).toBeUndefined();
    const other = Buffer.from(list);
    other[40]! ^= 1;
    expect(manifestMismatch(withPieces, { ...given, pieceSha256: other })).toMatch(/piece SHA-256s \([0-9a-f]{64}\) are not the signed manifest's/);
    expect(manifestMismatch(withPieces, given)).toMatch(/the torrent has none/);
    // A torrent with the list and a manifest without it: the list is just not used.
    expect(manifestMismatch(manifest, { ...given, pieceSha256: list })).toBeUndefined();
  });

  it('carry unpack only when true, so manifests signed before the key existed still verify, as unpack=false', () => {
    // What a controller signed before manifests carried unpack: no such key.
    const { unpack: _unpack, ...fields } = manifest;
    const legacy = encode({ type: 'swarmship-release/1', ...fields });
    const signature = sign(null, legacy, key.privateKey);
    expect(verifyManifest(legacy, signature, trusted).manifest).toEqual({ ...manifest, unpack: false });
    // A release that is not unpacked is signed as it always was, byte for byte.
    expect(encodeManifest({ ...manifest, unpack: false }).equals(legacy)).toBe(true);

    const unpacked = encodeManifest({ ...manifest, unpack: true });
    expect(unpacked.toString('latin1')).toMatch(/4:type19:swarmship-release\/16:unpacki1e7:version/);
    expect(decodeManifest(unpacked).unpack).toBe(true);
    // One encoding of false: an explicit 0 (or anything but 1) is not a manifest.
    for (const value of [0, 2, '1', 'true']) {
      expect(refusal(() => decodeManifest(encode({ type: 'swarmship-release/1', ...fields, unpack: value }))).message).toMatch(/'unpack' must be 1 when present/);
    }
  });
});

describe('signing keys', () => {
  it('read back from the PEM a controller stores, with the same key id', () => {
    const again = parsePrivateKey(privatePem, 'signing-key.pem');
    expect(again.keyId).toBe(key.keyId);
    expect(again.publicPem).toBe(key.publicPem);
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('trust every public key of a file holding several', () => {
    const next = generateSigningKey().key;
    expect(parsePublicKeys(`# old\n${key.publicPem}\n# new\n${next.publicPem}`, 'keys.pem').map((k) => k.keyId)).toEqual([key.keyId, next.keyId]);
  });

  it('refuse a private key, another algorithm or no key where a public key is expected', () => {
    expect(() => parsePublicKeys(privatePem, 'k.pem')).toThrow(/k\.pem: holds a private key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => parsePublicKeys(rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'rsa.pem')).toThrow(/rsa\.pem: an rsa key/);
    expect(() => parsePrivateKey(rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), '--signing-key')).toThrow(/--signing-key: an rsa key; release signing needs an Ed25519 key/);
    expect(() => parsePublicKeys('hello', 'SWARMSHIP_TRUST_KEY')).toThrow(SigningKeyError);
    expect(() => parsePrivateKey('hello', 'x')).toThrow(/x: not a PEM private key/);
  });
});
