#!/usr/bin/env -S node --initial-old-space-size=128
/**
 * The `shoal` command's entry. It loads the commands (most of a second: the NATS client,
 * OpenTelemetry and the rest) only after a command that runs until Ctrl-C (`dev`, `nats`) holds
 * SIGINT and SIGTERM, so that one sent while it starts up stops it cleanly once it is up instead
 * of killing it halfway (command.ts, holdSignals). The first line runs it with the Node.js flags a
 * node needs (node-flags.ts; `env -S` splits them, GNU coreutils 8.30 or later).
 */
import { holdSignals } from './command.js';

const verb = process.argv[2];
if (verb === 'dev' || verb === 'nats') holdSignals();
await import('./cli.js');
