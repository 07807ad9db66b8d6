// SPDX-License-Identifier: Apache-2.0
/**
 * The contract between the conformance suite and the per-device check files
 * (`devices/<name>/conformance.ts`), written once and transport-agnostic.
 *
 * Owns: check metadata (stable ID, the requirement it comes from, level, group, devices), the
 * verdicts (after virtio-villain's model: PASS, REJECT, SKIP, FAIL, WEDGED, CRASH; see
 * shared/reference/peers.md §4.4), and `ConformanceDriver`: what a device check may do to a
 * device (negotiate, read and write config space, place buffers with guard bytes around them, send
 * requests, look for stray writes). Device checks are written against this interface only, so a
 * device folder never imports vhost-user: the conformance layer implements it over a vhost-user
 * front-end, and `HarnessDriver` (device/testing.ts) over the in-process harness.
 * Does not own: running checks, transports, reports (all in `conformance/`).
 */
import type { DriverBuffer } from '../queue/split-driver.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit } from '../spec/virtio.js';

/**
 * What a check concluded.
 * - PASS: the device did what the requirement says.
 * - REJECT: the device refused the (hostile) input without using it, and still serves valid
 *   requests, possibly after a recovery the protocol offers (ring restart, device reset). Acceptable.
 * - SKIP: not applicable (a feature the device does not offer, a device type the check is not for).
 * - FAIL: detectably wrong behaviour (a stray write, a wrong status, a missing notification).
 * - WEDGED: the device stops answering valid requests, even after the recoveries tried.
 * - CRASH: the back-end process died.
 */
export type Verdict = 'PASS' | 'REJECT' | 'SKIP' | 'FAIL' | 'WEDGED' | 'CRASH';

/** Every verdict, in report order. */
export const VERDICTS: readonly Verdict[] = ['PASS', 'REJECT', 'SKIP', 'FAIL', 'WEDGED', 'CRASH'];

/** Verdicts that fail a conformance run. */
export const FAILING_VERDICTS: ReadonlySet<Verdict> = new Set<Verdict>(['FAIL', 'WEDGED', 'CRASH']);

/** RFC 2119 keyword of the requirement a check comes from. */
export type CheckLevel = 'MUST' | 'SHOULD' | 'MAY';

/** protocol: vhost-user messages; queue: virtqueue mechanics; hostile: a driver breaking the rules; device: one device type's semantics. */
export type CheckGroup = 'protocol' | 'queue' | 'hostile' | 'device';

export const CHECK_GROUPS: readonly CheckGroup[] = ['protocol', 'queue', 'hostile', 'device'];

/** What every check declares about itself. */
export interface CheckInfo {
  /** Stable dotted ID, e.g. `blk.read-write`; reports and expected-verdict files key on it. */
  readonly id: string;
  /** One line saying what is checked. */
  readonly title: string;
  /** Where the requirement comes from: `VIRTIO 1.3 §5.2.6.2 ...`, `vhost-user.rst "Ring states"`, `AVPS-BLK-02`. */
  readonly source: string;
  readonly level: CheckLevel;
  readonly group: CheckGroup;
  /** Device names the check applies to (`blk`, `rng`), or `all`. */
  readonly devices: readonly string[] | 'all';
}

/** A verdict and what led to it (shown in reports; one or two sentences). */
export interface CheckOutcome {
  readonly verdict: Verdict;
  readonly details: string;
}

export const pass = (details = ''): CheckOutcome => ({ verdict: 'PASS', details });
export const reject = (details: string): CheckOutcome => ({ verdict: 'REJECT', details });
export const skip = (details: string): CheckOutcome => ({ verdict: 'SKIP', details });
export const fail = (details: string): CheckOutcome => ({ verdict: 'FAIL', details });

/**
 * Features a conformance driver accepts when a check does not say: the device-specific bits (0-23,
 * §6) plus the ring features every `ConformanceDriver` implements (VERSION_1, INDIRECT_DESC,
 * EVENT_IDX). Transports share it so that a check sees the same negotiation over each.
 */
export const DEFAULT_DRIVER_FEATURES = 0xff_ffffn | featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_INDIRECT_DESC) | featureBit(VIRTIO_F_EVENT_IDX);

/** What `ConformanceDriver.start` negotiates. */
export interface DriverStartOptions {
  /**
   * Device feature bits the driver accepts (default: DEFAULT_DRIVER_FEATURES). Bits the device
   * does not offer are dropped, as a driver would.
   */
  readonly features?: bigint;
  /** Size of every queue (default 16, capped by what the device allows). */
  readonly queueSize?: number;
}

/** A used element as a check sees it. */
export interface UsedElement {
  /** Bytes the device says it wrote into the chain's device-writable part. */
  readonly len: number;
}

/**
 * How a config write was received: acknowledged as done, refused with an error, answered by
 * closing the connection (after which the driver can do nothing more), or not answered at all
 * (the transport gives no acknowledgement).
 */
export type ConfigWriteResult = 'accepted' | 'refused' | 'closed' | 'unacknowledged';

/** Request options. */
export interface RequestOptions {
  /** Queue index (default 0). */
  readonly queue?: number;
  /** Put the chain in an indirect table (needs VIRTIO_F_INDIRECT_DESC negotiated). */
  readonly indirect?: boolean;
}

/**
 * A driver for one device, as a device check uses it. Every call blocks until done; a request
 * that is never completed, or a device that goes away, ends the check with an exception the
 * runner turns into a verdict (FAIL, WEDGED or CRASH, after looking at the back-end's health).
 */
export interface ConformanceDriver {
  /** Device name (`blk`, `rng`). */
  readonly deviceName: string;
  /** Device feature bits the device offers (transport-specific bits removed). */
  readonly offeredFeatures: bigint;
  /** Features in force after `start`. */
  readonly features: bigint;
  /** Whether config space can be read and written over this transport. */
  readonly hasConfigAccess: boolean;
  /** Negotiates features and sets up guest memory and the queues. Call once, before requests. */
  start(opts?: DriverStartOptions): void;
  /** Reads config space; null when the device answered with an error. */
  readConfig(offset: number, length: number): Uint8Array | null;
  /** Writes config space as a driver does, and says how the device took it. */
  writeConfig(offset: number, data: Uint8Array): ConfigWriteResult;
  /** A new device-readable buffer holding a copy of `bytes`. */
  out(bytes: Uint8Array): DriverBuffer;
  /** A new device-writable buffer of `len` bytes, pre-filled with `fill`, with guard bytes around it. */
  in(len: number, fill?: number): DriverBuffer;
  /** The current contents of a buffer. */
  bytes(buf: DriverBuffer): Uint8Array;
  /** Makes `buffers` available as one chain, notifies the device, and waits until it is used. */
  request(buffers: readonly DriverBuffer[], opts?: RequestOptions): UsedElement;
  /**
   * Makes `buffers` available as one chain and notifies the device without waiting (buffers a
   * device keeps until something happens: GPIO interrupts, receive queues); returns a token.
   */
  post(buffers: readonly DriverBuffer[], opts?: RequestOptions): number;
  /** The used element of a posted chain, if the device returned it already (does not wait). */
  usedOf(token: number, opts?: { readonly queue?: number }): UsedElement | undefined;
  /** Waits until a posted chain is used, as `request` does. */
  wait(token: number, opts?: { readonly queue?: number }): UsedElement;
  /**
   * Creates a session out of band, as a front-end that keeps the control queue does (QEMU's
   * virtio-crypto over vhost-user CREATE_CRYPTO_SESSION): sends `message` and returns the reply.
   * Null when the device has no out-of-band sessions.
   */
  createSession(message: Uint8Array): Uint8Array | null;
  /** Closes a session out of band; false when the device refused (no such session). */
  closeSession(id: bigint): boolean;
  /**
   * Describes every byte the device changed outside device-writable buffers (guard bytes, readable
   * buffers, unused memory), or returns null when there is none.
   */
  strayWrites(): string | null;
}

/** A device-specific check. */
export interface DeviceCheck extends CheckInfo {
  run(d: ConformanceDriver): CheckOutcome;
}

/** A valid request the generic checks use to see that a device (still) works. */
export interface ProbeRequest {
  readonly buffers: readonly DriverBuffer[];
  /** Returns what is wrong with the result, or null when it is what the device must answer. */
  verify(used: UsedElement): string | null;
}

/** A chain whose buffers point the wrong way for this device, and how to judge the outcome. */
export interface WrongDirectionRequest {
  readonly buffers: readonly DriverBuffer[];
  /** `used` is null when the device did not return the chain. */
  judge(used: UsedElement | null): CheckOutcome;
}

/** What a device contributes to the conformance suite (`devices/<name>/conformance.ts`). */
export interface DeviceConformance {
  /** Device name, matching the registry (`blk`, `rng`). */
  readonly device: string;
  /** VIRTIO device ID (§5). */
  readonly deviceId: number;
  /** Size of the device's config space in the layout this device defines (0: none). */
  readonly configSize: number;
  /** Queue the generic checks drive. */
  readonly probeQueue: number;
  /**
   * Queues a driver sets up on `start` when the check does not say (default: the probe queue
   * alone). Devices whose checks also use other queues (vsock replies on rx) list them all.
   */
  readonly queues?: readonly number[];
  /** A fresh valid request, laid out in `d`'s memory. */
  probe(d: ConformanceDriver): ProbeRequest;
  /** A request with buffers in the wrong direction (e.g. a device-readable buffer where data goes). */
  wrongDirection(d: ConformanceDriver): WrongDirectionRequest;
  readonly checks: readonly DeviceCheck[];
}
