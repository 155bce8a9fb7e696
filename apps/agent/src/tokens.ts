/** Injection tokens: explicit, so nothing depends on emitted decorator metadata. */
export const RELEASE_AGENT = Symbol('ReleaseAgent');
