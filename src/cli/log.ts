// SPDX-License-Identifier: Apache-2.0
/**
 * Logging for AVP processes: pino, JSON lines on stderr (stdout stays free for machine-readable
 * output such as `--print-capabilities`). Synchronous writes so that nothing is lost on exit.
 * `AVP_LOG_LEVEL` or `-v` sets the level.
 */
import { pino, type Logger } from 'pino';

export function createLogger(name: string, level = process.env['AVP_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
