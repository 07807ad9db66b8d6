// SPDX-License-Identifier: Apache-2.0
/**
 * Shared pieces of the virtio-fs conformance checks (conformance.ts, conformance-hostile.ts): a
 * check that starts a FUSE session first, and helpers that turn an unexpected errno into FAIL and a
 * read-only share's EROFS into SKIP.
 */
import { fail, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck } from '../../device/conformance.js';
import { FuseClient } from './client.js';
import * as S from './spec.js';

export const SPEC = 'VIRTIO 1.3 §5.11.6 Device Operation (FUSE requests)';
export const FUSE = 'Linux include/uapi/linux/fuse.h';
export const ROOT = S.FUSE_ROOT_ID;
export const HELLO = 'hello.txt';
export const HELLO_SIZE = 4096;

/** Starts the driver, sends INIT, and returns a client; throws (FAIL) when INIT fails. */
export function session(d: ConformanceDriver): FuseClient {
  d.start({ queueSize: 64 });
  const c = new FuseClient(d);
  const r = c.init();
  if (r.error !== 0) throw new Error(`INIT failed: error ${r.error}`);
  return c;
}

export const isType = (mode: number, type: number): boolean => (mode & S.S_IFMT) === type;

/** Runs `body` and turns a thrown string into FAIL; EROFS from a creating step into SKIP. */
export function check(id: string, title: string, source: string, group: 'device' | 'hostile', body: (c: FuseClient, d: ConformanceDriver) => CheckOutcome, level: 'MUST' | 'SHOULD' = 'MUST'): DeviceCheck {
  return {
    id,
    title,
    // Every check names the device section it serves, whatever else it cites.
    source: source.includes('VIRTIO 1.3') ? source : `${SPEC}; ${source}`,
    level,
    group,
    devices: ['fs'],
    run(d) {
      const c = session(d);
      try {
        return body(c, d);
      } catch (e: unknown) {
        if (e === S.EROFS) return skip('read-only share: the set-up step was refused with EROFS');
        if (typeof e === 'string') return fail(e);
        throw e;
      }
    },
  };
}

/** The value, or throws: an errno becomes a FAIL naming `what` (EROFS a SKIP). */
export function must<T>(v: T | number, what: string): T {
  if (typeof v === 'number') {
    if (v === S.EROFS) throw S.EROFS;
    throw `${what} failed with errno ${v}`;
  }
  return v;
}

export function mustOk(errno: number, what: string): void {
  if (errno === S.EROFS) throw S.EROFS;
  if (errno !== 0) throw `${what} failed with errno ${errno}`;
}

/** A unique name per check, so a check that failed half-way does not disturb the next. */
let serial = 0;
export const fresh = (base: string): string => `conf-${base}-${process.pid}-${serial++}`;

