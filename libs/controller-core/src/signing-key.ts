import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../durable-files/src/atomic.js';
import { generateSigningKey, parsePrivateKey, SigningKeyError, type SigningKey } from '../../signing/src/keys.js';
import { ConfigError, type ControllerConfig } from './config.js';

/** The controller's signing key and where it lives. */
export interface ControllerSigningKey extends SigningKey {
  /** The private key's PEM file. */
  file: string;
  /** <data>/signing-key.pub.pem: the public key, for agents' --trust-key. */
  publicFile: string;
  /** Made by this call (a first start). */
  generated: boolean;
}

const KEY_FILE = 'signing-key.pem';
const PUBLIC_FILE = 'signing-key.pub.pem';

/**
 * The key release manifests are signed with: the PEM file `signingKeyFile` names, else
 * <data>/signing-key.pem, made (mode 0600) when it does not exist yet so a first start
 * needs no setup and a restart keeps the key agents trust. Either way the public half is
 * written to <data>/signing-key.pub.pem. Synchronous: a few hundred bytes, once, at start.
 */
export function openSigningKey(config: Pick<ControllerConfig, 'dataDir' | 'signingKeyFile'>): ControllerSigningKey {
  const publicFile = join(config.dataDir, PUBLIC_FILE);
  let key: SigningKey;
  let file: string;
  let generated = false;
  if (config.signingKeyFile !== undefined) {
    file = config.signingKeyFile;
    key = readKey(file, `signing key ${file}`, () => {
      throw new ConfigError(`signing key ${file} does not exist: make one with 'openssl genpkey -algorithm ed25519 -out ${file}', or leave --signing-key unset and the controller keeps one in its data dir`);
    });
  } else {
    file = join(config.dataDir, KEY_FILE);
    key = readKey(file, file, () => {
      const made = generateSigningKey();
      mkdirSync(config.dataDir, { recursive: true });
      writeFileAtomicSync(file, made.privatePem, 0o600);
      generated = true;
      return made.key;
    });
    // A file left readable by a careless copy is tightened, as the tokens file is.
    try {
      chmodSync(file, 0o600);
    } catch {
      // Not ours to change (a read-only mount): it is still usable.
    }
  }
  let current: string | undefined;
  try {
    current = readFileSync(publicFile, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== key.publicPem) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileAtomicSync(publicFile, key.publicPem, 0o644);
  }
  return { ...key, file, publicFile, generated };
}

/**
 * The signing key a controller with this configuration uses, read and nothing else:
 * none is made and no file written, so what it returns is the key a running controller
 * signs with (`--print-public-key`). A missing key is a ConfigError naming the file and
 * the settings that choose it.
 */
export function readSigningKey(config: Pick<ControllerConfig, 'dataDir' | 'signingKeyFile'>): SigningKey {
  const given = config.signingKeyFile !== undefined;
  const file = config.signingKeyFile ?? join(config.dataDir, KEY_FILE);
  return readKey(file, given ? `signing key ${file}` : file, () => {
    throw new ConfigError(
      given
        ? `signing key ${file} (--signing-key, SWARMSHIP_SIGNING_KEY) does not exist; nothing was made`
        : `no signing key at ${file}: a controller makes one at its first start, and none has started with this data dir; nothing was made. Point --data (SWARMSHIP_DATA) at the controller's data dir, or --signing-key (SWARMSHIP_SIGNING_KEY) at its key`,
    );
  });
}

function readKey(path: string, where: string, missing: () => SigningKey): SigningKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return missing();
    throw new ConfigError(`${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parsePrivateKey(pem, where);
  } catch (err) {
    if (err instanceof SigningKeyError) throw new ConfigError(err.message);
    throw err;
  }
}
