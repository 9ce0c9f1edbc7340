/** The actor runtime's public surface. Internals (cells, mailboxes) are not re-exported. */
export * from './actor.js';
export { ActorSystem, NATS_CONNECTION_DEFAULTS } from './actor-system.js';
export { decodeInternalReply, respondEdge, respondEdgeError } from './wire-replies.js';
export type { ActorSystemOptions, EscalationListener, SystemReport } from './actor-system.js';
export { ManualClock, RealClock } from './clock.js';
export type { Clock, Timer } from './clock.js';
export * from './codec.js';
export * from './errors.js';
export { createLogger } from './logger.js';
export type { LogLevel, Logger } from './logger.js';
export { DEFAULT_MAILBOX_CAPACITY } from './mailbox.js';
export { findNatsServer, startNatsServer, INSTALL_HINT, NatsServerNotFoundError } from './nats-server.js';
export type { NatsServer, NatsServerOptions } from './nats-server.js';
export { DEFAULT_SUPERVISION } from './supervision.js';
export type { SupervisionOptions } from './supervision.js';
export { DEFAULT_PREFIX, Subjects, assertActorName, assertToken } from './subjects.js';
export { TRACER_NAME } from './tracing.js';
