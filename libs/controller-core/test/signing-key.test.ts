import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, parsePublicKeys } from '../../signing/src/keys.js';
import { ConfigError, loadControllerConfig } from '../src/config.js';
import { openSigningKey } from '../src/signing-key.js';

describe("the controller's signing key", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmship-signing-key-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is made at the first start (0600) in the data dir and kept across starts, its public half beside it', async () => {
    const config = { dataDir: join(dir, 'data'), signingKeyFile: undefined };
    const first = openSigningKey(config);
    expect(first.generated).toBe(true);
    expect(first.file).toBe(join(dir, 'data', 'signing-key.pem'));
    expect((await stat(first.file)).mode & 0o777).toBe(0o600);
    expect(await readFile(first.publicFile, 'utf8')).toBe(first.publicPem);
    expect(parsePublicKeys(first.publicPem, 'pub')[0]!.keyId).toBe(first.keyId);
    const again = openSigningKey(config);
    expect(again).toMatchObject({ generated: false, keyId: first.keyId });
  });

  it('is read from --signing-key when named, never made there', async () => {
    const { key, privatePem } = generateSigningKey();
    await writeFile(join(dir, 'mine.pem'), privatePem, { mode: 0o600 });
    const config = await loadControllerConfig({ cwd: dir, flags: { data: 'data', 'signing-key': 'mine.pem' }, env: {} });
    const opened = openSigningKey(config);
    expect(opened).toMatchObject({ keyId: key.keyId, file: join(dir, 'mine.pem'), generated: false });
    expect(await readFile(join(dir, 'data', 'signing-key.pub.pem'), 'utf8')).toBe(key.publicPem);

    const missing = await loadControllerConfig({ cwd: dir, flags: { data: 'data' }, env: { SWARMSHIP_SIGNING_KEY: 'nope.pem' } });
    expect(() => openSigningKey(missing)).toThrow(ConfigError);
    expect(() => openSigningKey(missing)).toThrow(/nope\.pem does not exist: make one with 'openssl genpkey -algorithm ed25519/);
  });

  it('refuses a key of another algorithm, or a file that is not a key', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await writeFile(join(dir, 'rsa.pem'), rsa);
    await writeFile(join(dir, 'junk.pem'), 'not a key');
    expect(() => openSigningKey({ dataDir: dir, signingKeyFile: join(dir, 'rsa.pem') })).toThrow(/an rsa key; release signing needs an Ed25519 key/);
    expect(() => openSigningKey({ dataDir: dir, signingKeyFile: join(dir, 'junk.pem') })).toThrow(/junk\.pem: not a PEM private key/);
  });
});
