/**
 * What can go wrong in the controller, as codes a caller can act on. The HTTP layer maps
 * each code to a status in one exhaustive switch, so a new code cannot slip through as 500.
 */
export type ControllerErrorCode = 'bad-request' | 'unauthorized' | 'not-found' | 'conflict' | 'too-large' | 'no-space' | 'unavailable';

export class ControllerError extends Error {
  override name = 'ControllerError';

  constructor(
    readonly code: ControllerErrorCode,
    message: string,
    /** The request field at fault, for bad requests. */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function badRequest(field: string, message: string): ControllerError {
  return new ControllerError('bad-request', `${field}: ${message}`, field);
}

/** Disk full, or over quota: the caller gets "no space", not a stack trace. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
