/**
 * A malformed announce or scrape. The tracker answers it with a `failure reason`
 * that names the parameter, so whoever wrote the client can see what to fix.
 */
export class TrackerRequestError extends Error {
  override name = 'TrackerRequestError';
  constructor(
    /** The query parameter at fault, e.g. `info_hash`. */
    readonly parameter: string,
    /** What is wrong with it, without the parameter name. */
    readonly problem: string,
  ) {
    super(`${parameter} ${problem}`);
  }
}

/** A tracker answered with a `failure reason` (BEP 3): it understood us and said no. */
export class TrackerFailure extends Error {
  override name = 'TrackerFailure';
  constructor(
    readonly reason: string,
    readonly url: string,
  ) {
    super(`tracker ${url} refused the announce: ${reason}`);
  }
}
