// SPDX-License-Identifier: Apache-2.0
/**
 * The vhost-user-gpu display socket, back-end side (QEMU docs/interop/vhost-user-gpu.rst): QEMU's
 * vhost-user-gpu-pci hands the back-end one end of a socketpair (vhost-user GPU_SET_SOCKET) at
 * each DRIVER_OK, and shows on its own console what the back-end sends there. So QEMU's display
 * (a window, VNC, QMP screendump) shows our scanouts.
 *
 * Wire format: a 12-byte header `request u32, flags u32, size u32` (native byte order; AVP runs on
 * little-endian machines), then `size` payload bytes. The back-end sends requests; QEMU answers
 * the GET_* ones with flags VHOST_USER_GPU_MSG_FLAG_REPLY (0x4).
 *
 * Owns: the protocol-feature negotiation (GET_PROTOCOL_FEATURES, then SET_PROTOCOL_FEATURES with
 * the bits we use: none, as we need neither QEMU's EDID nor dmabuf scanouts), the message
 * encoders (SCANOUT, UPDATE, CURSOR_POS, CURSOR_POS_HIDE, CURSOR_UPDATE), the output queue with
 * back-pressure, and reading QEMU's replies.
 * Does not own: what is shown (model.ts decides and calls `scanout`/`update`/`cursor*`), the fd's
 * origin (the transport), OS calls (the injected UnixStreamOps).
 *
 * QEMU validates almost nothing on this socket (device-wave-2.md §2b): an UPDATE before a SCANOUT
 * of that scanout, or one reaching past the SCANOUT's size, writes outside its surface. So every
 * UPDATE sent here lies inside the size last announced with SCANOUT; the model guarantees it, and
 * `update` re-checks it. Until the negotiation is done nothing else is sent; the model then
 * re-sends the whole display state (`onReady`).
 * Output that QEMU does not read piles up: past `maxBacklogBytes` further UPDATEs are dropped and
 * the scanout is marked stale, and once the backlog drains the model sends it whole again.
 */
import type { HostReactor, HostWatch } from '../../device/contract.js';
import type { UnixStreamOps } from '../vsock/host.js';

export const VHOST_USER_GPU_GET_PROTOCOL_FEATURES = 1;
export const VHOST_USER_GPU_SET_PROTOCOL_FEATURES = 2;
export const VHOST_USER_GPU_GET_DISPLAY_INFO = 3;
export const VHOST_USER_GPU_CURSOR_POS = 4;
export const VHOST_USER_GPU_CURSOR_POS_HIDE = 5;
export const VHOST_USER_GPU_CURSOR_UPDATE = 6;
export const VHOST_USER_GPU_SCANOUT = 7;
export const VHOST_USER_GPU_UPDATE = 8;
export const VHOST_USER_GPU_DMABUF_SCANOUT = 9;
export const VHOST_USER_GPU_DMABUF_UPDATE = 10;
export const VHOST_USER_GPU_GET_EDID = 11;
export const VHOST_USER_GPU_DMABUF_SCANOUT2 = 12;
export const VHOST_USER_GPU_MSG_FLAG_REPLY = 0x4;
export const VHOST_USER_GPU_HDR_SIZE = 12;
/** Protocol feature bits (QEMU 10 answers GET_PROTOCOL_FEATURES with both). */
export const VHOST_USER_GPU_PROTOCOL_F_EDID = 0;
export const VHOST_USER_GPU_PROTOCOL_F_DMABUF2 = 1;
/** The protocol features AVP uses: none (our EDID is our own; no dmabufs). */
export const AVP_GPU_PROTOCOL_FEATURES = 0n;
/** Largest reply read from QEMU (display info is 408 bytes, EDID 1056). */
const MAX_REPLY_PAYLOAD = 64 * 1024;
/** CURSOR_UPDATE payload: pos (12) + hot_x, hot_y (8) + 64 × 64 × 4 bytes of a8r8g8b8. */
export const CURSOR_UPDATE_PAYLOAD = 12 + 8 + 64 * 64 * 4;

/** Counters of the display socket, part of the gpu metrics. */
export interface DisplaySocketStats {
  /** Sockets QEMU handed over (one per DRIVER_OK). */
  attached: number;
  messages: number;
  bytes: number;
  /** UPDATEs not sent because QEMU was not reading (the scanout was re-sent whole later). */
  droppedUpdates: number;
  /** The protocol features QEMU offered on the last socket (hex), or null before its reply. */
  offered: string | null;
}

export interface DisplaySocketEvents {
  /** Negotiation done: send the whole display state now. */
  onReady(): void;
  /** The backlog drained after UPDATEs were dropped: re-send the stale scanouts whole. */
  onDrained(): void;
  /** The socket ended (QEMU stopped or reset the device); the channel is closed. */
  onClosed(reason: string): void;
}

function header(request: number, size: number): Uint8Array {
  const b = new Uint8Array(VHOST_USER_GPU_HDR_SIZE + size);
  const v = new DataView(b.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, 0, true);
  v.setUint32(8, size, true);
  return b;
}

/** One display socket to QEMU. */
export class DisplaySocket {
  readonly #fd: number;
  readonly #ops: UnixStreamOps;
  readonly #events: DisplaySocketEvents;
  readonly #maxBacklog: number;
  readonly #stats: DisplaySocketStats;
  readonly #watch: HostWatch;
  /** Bytes waiting to be written, in order; the first may be partly written (`#head`). */
  readonly #out: Uint8Array[] = [];
  #head = 0;
  #backlog = 0;
  #ready = false;
  #dropped = false;
  #closed = false;
  /** Scanout sizes announced with SCANOUT (0 × 0: disabled or never announced). */
  readonly #sizes = new Map<number, { width: number; height: number }>();
  #in = new Uint8Array(0);

  constructor(fd: number, opts: { ops: UnixStreamOps; reactor: HostReactor; events: DisplaySocketEvents; stats: DisplaySocketStats; maxBacklogBytes: number }) {
    this.#fd = fd;
    this.#ops = opts.ops;
    this.#events = opts.events;
    this.#stats = opts.stats;
    this.#maxBacklog = opts.maxBacklogBytes;
    this.#stats.attached++;
    this.#stats.offered = null;
    this.#watch = opts.reactor.watch(fd, (r) => this.#onReady(r));
    this.#send(header(VHOST_USER_GPU_GET_PROTOCOL_FEATURES, 0));
  }

  /** Negotiation is done and display messages may be sent. */
  get ready(): boolean {
    return this.#ready;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** SCANOUT: scanout `id` is `width` × `height` (0 × 0 disables it). */
  scanout(id: number, width: number, height: number): void {
    if (!this.#ready) return;
    const b = header(VHOST_USER_GPU_SCANOUT, 12);
    const v = new DataView(b.buffer);
    v.setUint32(12, id, true);
    v.setUint32(16, width, true);
    v.setUint32(20, height, true);
    this.#sizes.set(id, { width, height });
    this.#send(b);
  }

  /**
   * UPDATE: x8r8g8b8 pixels (`width × 4` a row) at (x, y) of scanout `id`, written by `fill` straight
   * into the message (no intermediate copy of the frame). Returns false when it was not sent: the
   * socket is not ready, the rectangle is outside the announced size (never sent: QEMU would write
   * outside its surface), or QEMU is not keeping up (the scanout is stale). `fill` runs only when
   * the update is sent: nothing is converted for a dropped update.
   */
  update(id: number, x: number, y: number, width: number, height: number, fill: (payload: Uint8Array) => void): boolean {
    if (!this.#ready) return false;
    const size = this.#sizes.get(id);
    if (size === undefined || x + width > size.width || y + height > size.height) return false;
    if (this.#backlog > this.#maxBacklog) {
      this.#stats.droppedUpdates++;
      this.#dropped = true;
      return false;
    }
    const bytes = width * height * 4;
    const b = header(VHOST_USER_GPU_UPDATE, 20 + bytes);
    const v = new DataView(b.buffer);
    [id, x, y, width, height].forEach((n, i) => v.setUint32(12 + 4 * i, n, true));
    fill(b.subarray(32, 32 + bytes));
    this.#send(b);
    return true;
  }

  /** CURSOR_POS or CURSOR_POS_HIDE. */
  cursorPos(id: number, x: number, y: number, visible: boolean): void {
    if (!this.#ready) return;
    const b = header(visible ? VHOST_USER_GPU_CURSOR_POS : VHOST_USER_GPU_CURSOR_POS_HIDE, 12);
    const v = new DataView(b.buffer);
    v.setUint32(12, id, true);
    v.setUint32(16, x, true);
    v.setUint32(20, y, true);
    this.#send(b);
  }

  /** CURSOR_UPDATE: a 64 × 64 a8r8g8b8 image (16384 bytes) with its hot spot, at (x, y). */
  cursorUpdate(id: number, x: number, y: number, hotX: number, hotY: number, argb: Uint8Array): void {
    if (!this.#ready || argb.length !== 64 * 64 * 4) return;
    const b = header(VHOST_USER_GPU_CURSOR_UPDATE, CURSOR_UPDATE_PAYLOAD);
    const v = new DataView(b.buffer);
    [id, x, y, hotX, hotY].forEach((n, i) => v.setUint32(12 + 4 * i, n, true));
    b.set(argb, 32);
    this.#send(b);
  }

  /** Closes the socket (the model detaches it); no event is reported. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch.close();
    this.#ops.close(this.#fd);
    this.#out.length = 0;
    this.#backlog = 0;
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#events.onClosed(reason);
  }

  #send(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#stats.messages++;
    this.#stats.bytes += bytes.length;
    this.#out.push(bytes);
    this.#backlog += bytes.length;
    this.#flush();
  }

  /** Writes what the socket takes; waits for writability for the rest. */
  #flush(): void {
    try {
      while (this.#out.length > 0) {
        // Safe: the loop condition says there is a first chunk.
        const chunk = this.#out[0]!;
        const n = this.#ops.write(this.#fd, this.#head === 0 ? chunk : chunk.subarray(this.#head));
        if (n === null) break;
        this.#head += n;
        this.#backlog -= n;
        if (this.#head === chunk.length) {
          this.#out.shift();
          this.#head = 0;
        }
      }
    } catch (e: unknown) {
      this.#end(`write failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.#watch.setWritable(this.#out.length > 0);
    if (this.#out.length === 0 && this.#dropped) {
      this.#dropped = false;
      this.#events.onDrained();
    }
  }

  #onReady(r: { readable: boolean; writable: boolean; hangup: boolean }): void {
    if (r.writable) this.#flush();
    if (r.readable || r.hangup) this.#read();
  }

  #read(): void {
    const buf = new Uint8Array(4096);
    for (;;) {
      let n: number | null;
      try {
        n = this.#ops.read(this.#fd, buf);
      } catch (e: unknown) {
        this.#end(`read failed: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      if (n === null) return;
      if (n === 0) {
        this.#end('QEMU closed the display socket');
        return;
      }
      const joined = new Uint8Array(this.#in.length + n);
      joined.set(this.#in);
      joined.set(buf.subarray(0, n), this.#in.length);
      this.#in = joined;
      if (!this.#parse()) return;
    }
  }

  /** Handles every complete message in the input; false when the socket was closed. */
  #parse(): boolean {
    while (this.#in.length >= VHOST_USER_GPU_HDR_SIZE) {
      const v = new DataView(this.#in.buffer, this.#in.byteOffset, this.#in.length);
      const request = v.getUint32(0, true);
      const size = v.getUint32(8, true);
      if (size > MAX_REPLY_PAYLOAD) {
        this.#end(`message ${request} of ${size} bytes from QEMU, more than ${MAX_REPLY_PAYLOAD}`);
        return false;
      }
      if (this.#in.length < VHOST_USER_GPU_HDR_SIZE + size) return true;
      const payload = this.#in.slice(VHOST_USER_GPU_HDR_SIZE, VHOST_USER_GPU_HDR_SIZE + size);
      this.#in = this.#in.slice(VHOST_USER_GPU_HDR_SIZE + size);
      if (request === VHOST_USER_GPU_GET_PROTOCOL_FEATURES && !this.#ready && payload.length >= 8) {
        const offered = new DataView(payload.buffer).getBigUint64(0, true);
        this.#stats.offered = `0x${offered.toString(16)}`;
        const set = header(VHOST_USER_GPU_SET_PROTOCOL_FEATURES, 8);
        new DataView(set.buffer).setBigUint64(12, offered & AVP_GPU_PROTOCOL_FEATURES, true);
        this.#send(set);
        this.#ready = true;
        this.#events.onReady();
        if (this.#closed) return false;
      }
      // Anything else (a DMABUF_UPDATE acknowledgement, replies we never asked for) is ignored.
    }
    return true;
  }
}
