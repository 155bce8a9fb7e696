export { generateSigningKey, keyIdOf, parsePrivateKey, parsePublicKeys, SigningKeyError, type SigningKey, type TrustedKey } from './keys.js';
export {
  decodeManifest,
  encodeManifest,
  MANIFEST_TYPE,
  ManifestError,
  manifestMismatch,
  SIGNATURE_BYTES,
  signManifest,
  verifyManifest,
  type ManifestErrorCode,
  type ReleaseManifest,
  type SignedManifest,
} from './manifest.js';
