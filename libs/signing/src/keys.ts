import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** The key a controller signs release manifests with. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Short name of the public key: hex of the first 8 bytes of SHA-256 of its 32 raw bytes. */
  keyId: string;
  /** The public key as SPKI PEM, what agents are given. */
  publicPem: string;
}

/** A public key an agent accepts release manifests from. */
export interface TrustedKey {
  publicKey: KeyObject;
  keyId: string;
  /** Where it came from (a file, a variable), for messages. */
  source: string;
}

/** A key that cannot be used; the message starts with where it came from. */
export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

/** A fresh Ed25519 key and its private half as PKCS #8 PEM, to be stored (mode 0600). */
export function generateSigningKey(): { key: SigningKey; privatePem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { key: signingKey(privateKey, publicKey), privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** An Ed25519 private key from PEM (PKCS #8, as `openssl genpkey -algorithm ed25519` writes it). */
export function parsePrivateKey(pem: string, where: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new SigningKeyError(`${where}: not a PEM private key (${firstLine(err)})`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${where}: an ${privateKey.asymmetricKeyType ?? 'unknown'} key; release signing needs an Ed25519 key (openssl genpkey -algorithm ed25519)`);
  return signingKey(privateKey, createPublicKey(privateKey));
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Every Ed25519 public key in `text`: one or more SPKI PEM blocks (`-----BEGIN PUBLIC
 * KEY-----`), as `swarmship controller --print-public-key` prints them. A private key
 * is refused rather than reduced to its public half: it does not belong on a node.
 */
export function parsePublicKeys(text: string, where: string): TrustedKey[] {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new SigningKeyError(`${where}: no PEM public key in it (expected -----BEGIN PUBLIC KEY-----)`);
  return blocks.map((m) => {
    if (m[1] !== 'PUBLIC KEY') {
      if (m[1]!.includes('PRIVATE')) throw new SigningKeyError(`${where}: holds a private key; give agents the controller's public key (swarmship controller --print-public-key)`);
      throw new SigningKeyError(`${where}: a ${m[1]} block; expected -----BEGIN PUBLIC KEY-----`);
    }
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: m[0], format: 'pem' });
    } catch (err) {
      throw new SigningKeyError(`${where}: not a valid public key (${firstLine(err)})`);
    }
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${where}: an ${publicKey.asymmetricKeyType ?? 'unknown'} key; release signatures are Ed25519`);
    return { publicKey, keyId: keyIdOf(publicKey), source: where };
  });
}

export function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return createHash('sha256').update(raw).digest().subarray(0, 8).toString('hex');
}

function signingKey(privateKey: KeyObject, publicKey: KeyObject): SigningKey {
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

function firstLine(err: unknown): string {
  return (err as Error).message.split('\n')[0]!;
}
