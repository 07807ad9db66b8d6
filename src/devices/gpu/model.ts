// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-gpu 2D device (VIRTIO 1.3 §5.7) as QEMU 10's vhost-user-gpu-pci and Linux's
 * virtio-gpu DRM driver use it: 1 to 16 scanouts of a size set by options, 2D resources in a host
 * memory budget, the cursor, and three views of what the guest shows: QEMU's own display (the
 * display socket, display-socket.ts), PNG snapshots on demand (the control socket, or at reset
 * when a snapshot folder is set), and frame and damage counters.
 *
 * Owns: the config space, the control and cursor queues (requests answered by commands.ts), the
 * scanout state and what each flush shows, fences (every command completes before it is
 * answered, so a fenced command is answered at once with its fence echoed), the display socket's
 * lifetime, snapshots.
 * Does not own: request checks (commands.ts), resources and the budget (resources.ts), pixel
 * formats and PNG (pixels.ts), the socket protocols (display-socket.ts, ../control-socket.ts),
 * OS calls (injected: GpuHost).
 *
 * Config (§5.7.4): QEMU serves `events_read`, `events_clear` and `num_scanouts` from its own copy
 * (its `max_outputs`) and takes only `num_capsets` from the back-end; we serve all four the same
 * way for front-ends that read them from us (AVP's conformance suite).
 */
import type { DeviceContext, DeviceLog, HostReactor, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureBit, featureMask, hasFeature } from '../../spec/virtio.js';
import { ControlSocket, type ControlReply } from '../control-socket.js';
import { GPU_CMD_NAMES, controlCommand, requestSize, cursorCommand, encodeResponse, parseHeader, type GpuState, type RequestHeader, type ScanoutState } from './commands.js';
import { DisplaySocket, type DisplaySocketStats } from './display-socket.js';
import type { GpuHost } from './host.js';
import type { GpuMetrics } from './metrics.js';
import { bgrxInto, encodePng, toRgba } from './pixels.js';
import { ResourceTable, intersect, type Rect, type Resource } from './resources.js';
import {
  GPU_CFG_EVENTS_CLEAR,
  GPU_CFG_NUM_SCANOUTS,
  GPU_DEVICE_ID,
  GPU_HDR_SIZE,
  GPU_QUEUE_MAX_SIZE,
  GPU_RESP_NAMES,
  VIRTIO_GPU_CONFIG_SIZE,
  VIRTIO_GPU_CONTROLQ,
  VIRTIO_GPU_CURSORQ,
  VIRTIO_GPU_F_EDID,
  VIRTIO_GPU_RESP_ERR_UNSPEC,
} from './spec.js';

export interface GpuOptions {
  /** Scanouts (1..16), each `width` × `height`. */
  scanouts: number;
  width: number;
  height: number;
  /** Offer VIRTIO_GPU_F_EDID and answer GET_EDID. */
  edid: boolean;
  /** Most resources at once, and most bytes of resource images (the host memory budget). */
  maxResources: number;
  maxHostBytes: number;
  /** Display-socket bytes QEMU may leave unread before updates are dropped. */
  maxDisplayBacklog?: number;
  /** Where snapshots go by default, and where the last frames are saved at reset; none: not saved. */
  snapshotDir?: string;
  /** File name prefix of snapshots (`<prefix>-scanout<N>.png`); default `gpu`. */
  snapshotPrefix?: string;
  /** Control socket path (screenshot, info); served once the transport calls serveHost. */
  controlSocket?: string;
  host?: GpuHost;
}

interface Scanout extends ScanoutState {
  frames: number;
  damagePixels: number;
  /** QEMU's copy is out of date (updates were dropped): send it whole when the socket drains. */
  stale: boolean;
}

const DEFAULT_DISPLAY_BACKLOG = 64 << 20;

export class GpuDevice implements VirtioDevice, GpuState {
  readonly deviceId = GPU_DEVICE_ID;
  readonly name = 'gpu';
  readonly queueMaxSizes = [GPU_QUEUE_MAX_SIZE, GPU_QUEUE_MAX_SIZE];
  readonly offeredFeatures: bigint;
  readonly configSize = VIRTIO_GPU_CONFIG_SIZE;
  readonly resources: ResourceTable;
  readonly scanouts: Scanout[];
  readonly #opts: GpuOptions;
  #ctx: DeviceContext | undefined;
  #reactor: HostReactor | undefined;
  #log: DeviceLog | undefined;
  #display: DisplaySocket | undefined;
  readonly #displayStats: DisplaySocketStats = { attached: 0, messages: 0, bytes: 0, droppedUpdates: 0, offered: null };
  #control: ControlSocket | undefined;
  #eventsRead = 0;
  readonly #counts = { commands: {} as Record<string, number>, errors: {} as Record<string, number>, badChains: 0, created: 0, transfers: 0, transferBytes: 0, cursorUpdates: 0, cursorMoves: 0, cursorErrors: 0, snapshots: 0, snapshotsReused: 0 };
  /** Bumped per scanout whenever what it shows may change (SET_SCANOUT, a flush on it, reset). */
  #views: number[] = [];
  /** Per snapshot file: the scanout and view it holds, so an unchanged screen is not encoded again. */
  readonly #written = new Map<string, { id: number; view: number }>();
  #cursor: { scanout: number; x: number; y: number; visible: boolean; image: Uint8Array | null; hotX: number; hotY: number } = { scanout: 0, x: 0, y: 0, visible: false, image: null, hotX: 0, hotY: 0 };

  constructor(opts: GpuOptions) {
    this.#opts = opts;
    this.offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX) | (opts.edid ? featureBit(VIRTIO_GPU_F_EDID) : 0n);
    this.resources = new ResourceTable({ maxResources: opts.maxResources, maxBytes: opts.maxHostBytes });
    this.scanouts = Array.from({ length: opts.scanouts }, () => ({ width: opts.width, height: opts.height, enabled: true, resourceId: 0, rect: { x: 0, y: 0, width: 0, height: 0 }, frames: 0, damagePixels: 0, stale: false }));
    // Listening now makes a bad path fail when the back-end starts; serving waits for serveHost.
    if (opts.controlSocket !== undefined && opts.host?.streams !== undefined) {
      this.#control = new ControlSocket(opts.controlSocket, opts.host.streams, { device: 'gpu', requests: ['screenshot', 'info'] }, (line) => this.control(line));
    }
  }

  get memory(): DeviceContext['memory'] {
    // Safe: commands run only from queueNotify, which needs an active context.
    return this.#ctx!.memory;
  }

  get edid(): boolean {
    return this.#ctx !== undefined && hasFeature(this.#ctx.features, VIRTIO_GPU_F_EDID);
  }

  // ---------------------------------------------------------------------------------------------
  // Config space

  readConfig(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(VIRTIO_GPU_CONFIG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, this.#eventsRead, true);
    v.setUint32(GPU_CFG_NUM_SCANOUTS, this.scanouts.length, true);
    // num_capsets stays 0: no 3D.
    return b.slice(offset, offset + length);
  }

  /** Only `events_clear` is writable: "the driver writes to events_clear to clear events" (§5.7.4). */
  writeConfig(offset: number, data: Uint8Array): void {
    if (offset > GPU_CFG_EVENTS_CLEAR || offset + data.length <= GPU_CFG_EVENTS_CLEAR) return;
    const clear = new Uint8Array(4);
    for (let i = 0; i < data.length; i++) {
      const at = offset + i - GPU_CFG_EVENTS_CLEAR;
      if (at >= 0 && at < 4) clear[at] = data[i] ?? 0;
    }
    this.#eventsRead &= ~new DataView(clear.buffer).getUint32(0, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  serveHost(reactor: HostReactor, log: DeviceLog): void {
    this.#reactor = reactor;
    this.#log = log;
    this.#control?.serve(reactor, log);
  }

  frontendChannel(fd: number): boolean {
    const streams = this.#opts.host?.streams;
    const reactor = this.#reactor ?? this.#ctx?.reactor;
    if (streams === undefined || reactor === undefined) return false;
    this.#display?.close();
    const sock: DisplaySocket = new DisplaySocket(fd, {
      ops: streams,
      reactor,
      stats: this.#displayStats,
      maxBacklogBytes: this.#opts.maxDisplayBacklog ?? DEFAULT_DISPLAY_BACKLOG,
      events: {
        onReady: () => this.#resync(sock, () => true),
        onDrained: () => this.#resync(sock, (s) => s.stale),
        onClosed: (reason) => {
          if (this.#display === sock) this.#display = undefined;
          this.#log?.info(`display socket closed: ${reason}`);
        },
      },
    });
    this.#display = sock;
    return true;
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#log ??= ctx.log;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === VIRTIO_GPU_CONTROLQ) serveQueue(ctx, index, (c) => this.#control1(c));
    else if (index === VIRTIO_GPU_CURSORQ) serveQueue(ctx, index, (c) => this.#cursor1(c));
  }

  reset(): void {
    this.#saveLastFrames();
    for (const [i, s] of this.scanouts.entries()) {
      this.#viewChanged(i);
      if (s.resourceId !== 0) this.#display?.scanout(i, 0, 0);
      s.resourceId = 0;
      s.rect = { x: 0, y: 0, width: 0, height: 0 };
      s.stale = false;
    }
    this.resources.clear();
    this.#cursor = { scanout: 0, x: 0, y: 0, visible: false, image: null, hotX: 0, hotY: 0 };
    this.#eventsRead = 0;
    this.#ctx = undefined;
    // The display socket stays: QEMU sends it before the vhost-user start that resets us.
  }

  dispose(): void {
    this.#display?.close();
    this.#display = undefined;
    this.#control?.close();
    this.#control = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Queues

  #control1(chain: DescriptorChain): number {
    if (chain.writableLength < GPU_HDR_SIZE) {
      this.#counts.badChains++;
      return 0;
    }
    const r = chain.reader();
    const w = chain.writer();
    let hdr: RequestHeader | null = null;
    let out: Uint8Array;
    if (chain.readableLength < GPU_HDR_SIZE) {
      out = encodeResponse(null, { type: VIRTIO_GPU_RESP_ERR_UNSPEC, body: new Uint8Array(0) });
    } else {
      const first = r.readBytes(GPU_HDR_SIZE);
      hdr = parseHeader(first);
      this.#bump(this.#counts.commands, GPU_CMD_NAMES[hdr.type] ?? `0x${hdr.type.toString(16)}`);
      // The command's fixed part follows the header; anything after it (backing entries) is read
      // by the command through `r`.
      const head = new Uint8Array(GPU_HDR_SIZE + Math.min(r.remaining, requestSize(hdr.type) - GPU_HDR_SIZE));
      head.set(first);
      r.readInto(head.subarray(GPU_HDR_SIZE));
      out = encodeResponse(hdr, controlCommand(this, hdr, head, r));
    }
    // A response that does not fit the driver's buffer is replaced by ERR_UNSPEC (24 bytes fit).
    if (out.length > chain.writableLength) out = encodeResponse(hdr, { type: VIRTIO_GPU_RESP_ERR_UNSPEC, body: new Uint8Array(0) });
    const type = new DataView(out.buffer).getUint32(0, true);
    if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC) this.#bump(this.#counts.errors, GPU_RESP_NAMES[type] ?? String(type));
    w.write(out);
    return out.length;
  }

  #cursor1(chain: DescriptorChain): number {
    const r = chain.reader();
    const problem = cursorCommand(this, r.readBytes(Math.min(chain.readableLength, 64)));
    if (problem !== null) {
      this.#counts.cursorErrors++;
      this.#log?.debug(`cursor queue: ${problem}`);
    }
    // The cursor queue has no responses: QEMU and Linux use none.
    return 0;
  }

  #bump(m: Record<string, number>, key: string): void {
    m[key] = (m[key] ?? 0) + 1;
  }

  // ---------------------------------------------------------------------------------------------
  // GpuState: what commands change

  setScanout(id: number, resourceId: number, rect: Rect): void {
    const s = this.scanouts[id];
    if (s === undefined) return;
    this.#viewChanged(id);
    const changed = s.resourceId !== resourceId || s.rect.width !== rect.width || s.rect.height !== rect.height;
    s.resourceId = resourceId;
    s.rect = rect;
    if (resourceId === 0) {
      if (changed) this.#display?.scanout(id, 0, 0);
      return;
    }
    const d = this.#display;
    if (d === undefined || !d.ready) return;
    if (changed) d.scanout(id, rect.width, rect.height);
    // QEMU's new surface is blank until an update: send what the resource holds now.
    this.#sendWhole(d, id);
  }

  flush(res: Resource, rect: Rect): void {
    this.scanouts.forEach((s, id) => {
      if (s.resourceId !== res.id) return;
      const r = intersect(rect, s.rect);
      if (r === null) return;
      s.frames++;
      s.damagePixels += r.width * r.height;
      this.#viewChanged(id);
      const d = this.#display;
      if (d === undefined || !d.ready) return;
      if (!d.update(id, r.x - s.rect.x, r.y - s.rect.y, r.width, r.height, (out) => bgrxInto(res, r, out))) s.stale = true;
    });
  }

  unref(res: Resource): void {
    this.scanouts.forEach((s, id) => {
      if (s.resourceId === res.id) this.setScanout(id, 0, { x: 0, y: 0, width: 0, height: 0 });
    });
  }

  transferred(res: Resource, bytes: number): void {
    this.#counts.transfers++;
    this.#counts.transferBytes += bytes;
    this.scanouts.forEach((s, id) => {
      if (s.resourceId === res.id) this.#viewChanged(id);
    });
  }

  cursor(update: boolean, scanout: number, x: number, y: number, image: Resource | null, hotX: number, hotY: number): void {
    const c = this.#cursor;
    if (update) {
      this.#counts.cursorUpdates++;
      c.image = image === null ? null : toBgra(image);
      c.hotX = hotX;
      c.hotY = hotY;
      c.visible = image !== null;
    } else this.#counts.cursorMoves++;
    c.scanout = scanout;
    c.x = x;
    c.y = y;
    const d = this.#display;
    if (d === undefined) return;
    if (update && c.image !== null) d.cursorUpdate(scanout, x, y, hotX, hotY, c.image);
    else d.cursorPos(scanout, x, y, c.visible);
  }

  // ---------------------------------------------------------------------------------------------
  // Display socket

  /** Sends the scanouts `which` selects whole (after negotiation, or after dropped updates). */
  #resync(d: DisplaySocket, which: (s: Scanout) => boolean): void {
    if (this.#display !== d) return;
    this.scanouts.forEach((s, id) => {
      if (!which(s)) return;
      if (s.resourceId === 0) {
        d.scanout(id, 0, 0);
        return;
      }
      d.scanout(id, s.rect.width, s.rect.height);
      this.#sendWhole(d, id);
    });
    const c = this.#cursor;
    if (c.image !== null) d.cursorUpdate(c.scanout, c.x, c.y, c.hotX, c.hotY, c.image);
  }

  #sendWhole(d: DisplaySocket, id: number): void {
    const s = this.scanouts[id];
    const res = s === undefined ? undefined : this.resources.get(s.resourceId);
    if (s === undefined || res === undefined) return;
    s.stale = !d.update(id, 0, 0, s.rect.width, s.rect.height, (out) => bgrxInto(res, s.rect, out));
  }

  // ---------------------------------------------------------------------------------------------
  // Host view: snapshots and the control socket

  /**
   * Writes a PNG of what scanout `id` shows to `path` (default: the snapshot folder).
   * @throws Error when the scanout does not exist, shows nothing, or no path can be chosen.
   */
  snapshot(id: number, path?: string): { path: string; width: number; height: number; frame: number } {
    const s = this.scanouts[id];
    if (s === undefined) throw new Error(`scanout ${id} does not exist (the device has ${this.scanouts.length})`);
    const res = this.resources.get(s.resourceId);
    if (res === undefined) throw new Error(`scanout ${id} shows nothing (the guest has not set it up)`);
    const dir = this.#opts.snapshotDir;
    const file = path ?? (dir === undefined ? undefined : `${dir}/${this.#opts.snapshotPrefix ?? 'gpu'}-scanout${id}.png`);
    if (file === undefined) throw new Error('no path given and no snapshot folder configured');
    const host = this.#opts.host;
    if (host === undefined) throw new Error('no host to write files with');
    // A dashboard asks several times a second; a screen that did not change since the last
    // picture written to this file is that picture (encoding one costs tens of milliseconds).
    const view = this.#views[id] ?? 0;
    const last = this.#written.get(file);
    if (last !== undefined && last.id === id && last.view === view && host.exists?.(file) === true) {
      this.#counts.snapshotsReused++;
    } else {
      host.writeFile(file, encodePng(s.rect.width, s.rect.height, toRgba(res, s.rect)));
      this.#written.set(file, { id, view });
      this.#counts.snapshots++;
    }
    return { path: file, width: s.rect.width, height: s.rect.height, frame: s.frames };
  }

  #viewChanged(id: number): void {
    this.#views[id] = (this.#views[id] ?? 0) + 1;
  }

  /** One control-socket request (see kind.ts for the protocol). Never throws. */
  control(line: string): ControlReply {
    try {
      return this.#controlRequest(line);
    } catch (e: unknown) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  #controlRequest(line: string): ControlReply {
    const [cmd, ...args] = line.trim().split(/\s+/);
    if (cmd === 'screenshot') {
      const id = args[0] === undefined ? 0 : Number(args[0]);
      if (!Number.isInteger(id) || id < 0) return { ok: false, error: `screenshot: expected a scanout number, got '${args[0] ?? ''}'` };
      const path = args.slice(1).join(' ') || undefined;
      if (path !== undefined && !path.startsWith('/')) return { ok: false, error: 'screenshot: the path must be absolute' };
      return { ok: true, ...this.snapshot(id, path) };
    }
    if (cmd === 'info' || cmd === 'metrics') return { ok: true, metrics: this.metrics() };
    return { ok: false, error: `unknown request '${cmd ?? ''}'; expected: screenshot [SCANOUT] [PATH], info` };
  }

  /** At reset (the guest went away or rebooted), the last frame of each scanout that shows one. */
  #saveLastFrames(): void {
    if (this.#opts.snapshotDir === undefined) return;
    this.scanouts.forEach((s, id) => {
      if (s.resourceId === 0) return;
      try {
        this.snapshot(id);
      } catch (e: unknown) {
        this.#log?.warn(`last frame of scanout ${id} not saved: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  metrics(): GpuMetrics {
    const c = this.#counts;
    return {
      device: 'gpu',
      commands: { ...c.commands },
      errors: { ...c.errors },
      badChains: c.badChains,
      resources: { count: this.resources.count, bytes: this.resources.bytes, maxBytes: this.resources.maxBytes, transfers: c.transfers, transferBytes: c.transferBytes },
      scanouts: this.scanouts.map((s, id) => ({ id, width: s.width, height: s.height, resourceId: s.resourceId, frames: s.frames, damagePixels: s.damagePixels })),
      cursor: { updates: c.cursorUpdates, moves: c.cursorMoves, errors: c.cursorErrors, visible: this.#cursor.visible },
      display: { connected: this.#display !== undefined, ready: this.#display?.ready ?? false, ...this.#displayStats },
      snapshots: c.snapshots,
      snapshotsReused: c.snapshotsReused,
      controlRequests: this.#control?.requests ?? 0,
    };
  }
}

/** A 64 × 64 cursor resource as a8r8g8b8 little-endian bytes (B, G, R, A) for QEMU. */
function toBgra(res: Resource): Uint8Array {
  const rgba = toRgba(res, { x: 0, y: 0, width: res.width, height: res.height }, true);
  const out = new Uint8Array(rgba.length);
  for (let i = 0; i < rgba.length; i += 4) {
    out[i] = rgba[i + 2] ?? 0;
    out[i + 1] = rgba[i + 1] ?? 0;
    out[i + 2] = rgba[i] ?? 0;
    out[i + 3] = rgba[i + 3] ?? 0;
  }
  return out;
}
