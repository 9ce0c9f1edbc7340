/** The TypeScript client's public surface. */
export * from './client.js';
export * from './ops.js';
export {
  ShoalError,
  InvalidArgumentError,
  NotFoundError,
  AlreadyExistsError,
  PayloadTooLargeError,
  UnavailableError,
  TimeoutError,
  InternalError,
} from '../runtime/errors.js';
export type { ErrorCode } from '../runtime/errors.js';
export type { NatsSecurity } from '../runtime/nats-security.js';
export * from './backups.js';
