/**
 * Injection tokens. Providers are injected by token, not by constructor type, so the
 * app does not depend on emitted decorator metadata (vitest's transform emits none).
 */
export const CORE = Symbol('ControllerCore');
export const METRICS = Symbol('ControllerMetrics');
export const LOGGER = Symbol('Logger');

/** Route metadata key: the route answers without a bearer token. */
export const PUBLIC_ROUTE = 'swarmship:public';
