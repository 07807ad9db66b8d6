// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu control and cursor commands (VIRTIO 1.3 §5.7.6.8-§5.7.6.10): each request parsed,
 * checked and answered. The 2D command set: GET_DISPLAY_INFO, GET_EDID, RESOURCE_CREATE_2D,
 * RESOURCE_UNREF, SET_SCANOUT, RESOURCE_FLUSH, TRANSFER_TO_HOST_2D, RESOURCE_ATTACH_BACKING,
 * RESOURCE_DETACH_BACKING; UPDATE_CURSOR and MOVE_CURSOR on the cursor queue.
 *
 * Owns: request layouts (spec.ts offsets), every check and its error response, fence echo.
 * Error responses follow the spec's names and QEMU's choices where the spec leaves them open:
 * a request shorter than its command → ERR_UNSPEC; an unknown or 3D command → ERR_UNSPEC; resource
 * id 0, unknown or already used → ERR_INVALID_RESOURCE_ID; a scanout id ≥ num_scanouts →
 * ERR_INVALID_SCANOUT_ID; a format not listed, a zero size, a rectangle outside its resource (or,
 * for SET_SCANOUT, under 16 × 16 as QEMU requires), a transfer reaching past the backing →
 * ERR_INVALID_PARAMETER; the resource budget (count or bytes) exhausted → ERR_OUT_OF_MEMORY;
 * more than 16384 backing entries, an entry outside guest memory, a second backing, detaching
 * none, a guest memory fault during a copy → ERR_UNSPEC.
 * Does not own: the device's state and what it shows (`GpuState`, implemented by model.ts).
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { GuestMemoryError } from '../../memory/errors.js';
import type { ChainReader } from '../../queue/chain.js';
import { makeEdid } from './edid.js';
import { MAX_BACKING_ENTRIES, rectInside, type BackingEntry, type Rect, type Resource, type ResourceTable } from './resources.js';
import {
  GPU_ATTACH_BACKING_SIZE,
  GPU_CURSOR_SIZE,
  GPU_DISPLAY_ONE_SIZE,
  GPU_EDID_BLOB_SIZE,
  GPU_GET_EDID_SIZE,
  GPU_HDR_SIZE,
  GPU_MEM_ENTRY_SIZE,
  GPU_RESOURCE_CREATE_2D_SIZE,
  GPU_RESOURCE_FLUSH_SIZE,
  GPU_RESOURCE_ID_SIZE,
  GPU_RESP_DISPLAY_INFO_SIZE,
  GPU_RESP_EDID_SIZE,
  GPU_SET_SCANOUT_SIZE,
  GPU_TRANSFER_TO_HOST_2D_SIZE,
  GPU_UPDATE_CURSOR_SIZE,
  VIRTIO_GPU_CMD_GET_DISPLAY_INFO,
  VIRTIO_GPU_CMD_GET_EDID,
  VIRTIO_GPU_CMD_MOVE_CURSOR,
  VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
  VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
  VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
  VIRTIO_GPU_CMD_RESOURCE_FLUSH,
  VIRTIO_GPU_CMD_RESOURCE_UNREF,
  VIRTIO_GPU_CMD_SET_SCANOUT,
  VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
  VIRTIO_GPU_CMD_UPDATE_CURSOR,
  VIRTIO_GPU_FLAG_FENCE,
  VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
  VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
  VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID,
  VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
  VIRTIO_GPU_RESP_ERR_UNSPEC,
  VIRTIO_GPU_RESP_OK_DISPLAY_INFO,
  VIRTIO_GPU_RESP_OK_EDID,
  VIRTIO_GPU_RESP_OK_NODATA,
} from './spec.js';

/** Command names for metrics. */
export const GPU_CMD_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_GPU_CMD_GET_DISPLAY_INFO]: 'GET_DISPLAY_INFO',
  [VIRTIO_GPU_CMD_RESOURCE_CREATE_2D]: 'RESOURCE_CREATE_2D',
  [VIRTIO_GPU_CMD_RESOURCE_UNREF]: 'RESOURCE_UNREF',
  [VIRTIO_GPU_CMD_SET_SCANOUT]: 'SET_SCANOUT',
  [VIRTIO_GPU_CMD_RESOURCE_FLUSH]: 'RESOURCE_FLUSH',
  [VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D]: 'TRANSFER_TO_HOST_2D',
  [VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING]: 'RESOURCE_ATTACH_BACKING',
  [VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING]: 'RESOURCE_DETACH_BACKING',
  [VIRTIO_GPU_CMD_GET_EDID]: 'GET_EDID',
  [VIRTIO_GPU_CMD_UPDATE_CURSOR]: 'UPDATE_CURSOR',
  [VIRTIO_GPU_CMD_MOVE_CURSOR]: 'MOVE_CURSOR',
};

/** A scanout's mode (what GET_DISPLAY_INFO reports) and what it shows. */
export interface ScanoutState {
  readonly width: number;
  readonly height: number;
  readonly enabled: boolean;
  /** The resource shown (0: none) and the part of it that is shown. */
  resourceId: number;
  rect: Rect;
}

/** What commands act on: the device state (model.ts). */
export interface GpuState {
  readonly memory: GuestMemory;
  readonly resources: ResourceTable;
  readonly scanouts: readonly ScanoutState[];
  /** GET_EDID is answered (VIRTIO_GPU_F_EDID negotiated). */
  readonly edid: boolean;
  /** A scanout starts or stops showing a resource (resourceId 0). */
  setScanout(id: number, resourceId: number, rect: Rect): void;
  /** `rect` of `res` was flushed (the caller already checked it lies inside `res`). */
  flush(res: Resource, rect: Rect): void;
  /** A resource is going away (scanouts showing it are disabled first). */
  unref(res: Resource): void;
  /** `bytes` were copied into `res` by a transfer (metrics; a snapshot of a scanout showing it changes). */
  transferred(res: Resource, bytes: number): void;
  /** Cursor commands: `resourceId` 0 hides the cursor; `image` is its 64 × 64 resource. */
  cursor(update: boolean, scanout: number, x: number, y: number, image: Resource | null, hotX: number, hotY: number): void;
}

/** A response: its type and the bytes after the header (empty for OK_NODATA and errors). */
export interface Response {
  readonly type: number;
  readonly body: Uint8Array;
}

const ok = (): Response => ({ type: VIRTIO_GPU_RESP_OK_NODATA, body: new Uint8Array(0) });
const err = (type: number): Response => ({ type, body: new Uint8Array(0) });

/** The request's header fields a response echoes. */
export interface RequestHeader {
  readonly type: number;
  readonly flags: number;
  readonly fenceId: bigint;
  readonly ctxId: number;
}

export function parseHeader(b: Uint8Array): RequestHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { type: v.getUint32(0, true), flags: v.getUint32(4, true), fenceId: v.getBigUint64(8, true), ctxId: v.getUint32(16, true) };
}

/**
 * The response bytes: header (type; with FENCE requested, the FENCE flag, fence_id and ctx_id
 * echoed: "the device MUST set VIRTIO_GPU_FLAG_FENCE in the response and copy fence_id") and body.
 */
export function encodeResponse(req: RequestHeader | null, resp: Response): Uint8Array {
  const out = new Uint8Array(GPU_HDR_SIZE + resp.body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, resp.type, true);
  if (req !== null && req.flags & VIRTIO_GPU_FLAG_FENCE) {
    v.setUint32(4, VIRTIO_GPU_FLAG_FENCE, true);
    v.setBigUint64(8, req.fenceId, true);
    v.setUint32(16, req.ctxId, true);
  }
  out.set(resp.body, GPU_HDR_SIZE);
  return out;
}

/** The request size each control command needs (header included). */
const REQUEST_SIZES: Readonly<Record<number, number>> = {
  [VIRTIO_GPU_CMD_GET_DISPLAY_INFO]: GPU_HDR_SIZE,
  [VIRTIO_GPU_CMD_GET_EDID]: GPU_GET_EDID_SIZE,
  [VIRTIO_GPU_CMD_RESOURCE_CREATE_2D]: GPU_RESOURCE_CREATE_2D_SIZE,
  [VIRTIO_GPU_CMD_RESOURCE_UNREF]: GPU_RESOURCE_ID_SIZE,
  [VIRTIO_GPU_CMD_SET_SCANOUT]: GPU_SET_SCANOUT_SIZE,
  [VIRTIO_GPU_CMD_RESOURCE_FLUSH]: GPU_RESOURCE_FLUSH_SIZE,
  [VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D]: GPU_TRANSFER_TO_HOST_2D_SIZE,
  [VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING]: GPU_ATTACH_BACKING_SIZE,
  [VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING]: GPU_RESOURCE_ID_SIZE,
};

/** The size of a control request of `type`, header included (just the header for unknown types). */
export function requestSize(type: number): number {
  return REQUEST_SIZES[type] ?? GPU_HDR_SIZE;
}

function rectAt(v: DataView, off: number): Rect {
  return { x: v.getUint32(off, true), y: v.getUint32(off + 4, true), width: v.getUint32(off + 8, true), height: v.getUint32(off + 12, true) };
}

/**
 * One control-queue command. `head` is the request's first bytes (header and fixed body, as many
 * as the chain had up to the command's size); `rest` reads what follows (backing entries).
 */
export function controlCommand(s: GpuState, hdr: RequestHeader, head: Uint8Array, rest: ChainReader): Response {
  const need = REQUEST_SIZES[hdr.type];
  if (need === undefined) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  if (head.length < need) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const b = GPU_HDR_SIZE;
  switch (hdr.type) {
    case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
      return displayInfo(s);
    case VIRTIO_GPU_CMD_GET_EDID:
      return getEdid(s, v.getUint32(b, true));
    case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: {
      const id = v.getUint32(b, true);
      if (id === 0) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
      const r = s.resources.create(id, v.getUint32(b + 4, true), v.getUint32(b + 8, true), v.getUint32(b + 12, true));
      if ('ok' in r) return ok();
      if (r.error === 'exists') return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
      return err(r.error === 'budget' || r.error === 'count' ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    }
    case VIRTIO_GPU_CMD_RESOURCE_UNREF: {
      const res = s.resources.get(v.getUint32(b, true));
      if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
      s.unref(res);
      s.resources.unref(res.id);
      return ok();
    }
    case VIRTIO_GPU_CMD_SET_SCANOUT:
      return setScanout(s, rectAt(v, b), v.getUint32(b + 16, true), v.getUint32(b + 20, true));
    case VIRTIO_GPU_CMD_RESOURCE_FLUSH: {
      const r = rectAt(v, b);
      const res = s.resources.get(v.getUint32(b + 16, true));
      if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
      if (!rectInside(r, res.width, res.height)) return err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
      s.flush(res, r);
      return ok();
    }
    case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
      return transfer(s, rectAt(v, b), v, b);
    case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
      return attachBacking(s, v.getUint32(b, true), v.getUint32(b + 4, true), rest);
    case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: {
      const res = s.resources.get(v.getUint32(b, true));
      if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
      if (!res.hasBacking) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
      res.detach();
      return ok();
    }
    default:
      return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  }
}

function displayInfo(s: GpuState): Response {
  const body = new Uint8Array(GPU_RESP_DISPLAY_INFO_SIZE - GPU_HDR_SIZE);
  const v = new DataView(body.buffer);
  s.scanouts.forEach((sc, i) => {
    const o = i * GPU_DISPLAY_ONE_SIZE;
    // rect: the mode at (0, 0); enabled: a display is connected; flags: none defined.
    v.setUint32(o + 8, sc.width, true);
    v.setUint32(o + 12, sc.height, true);
    v.setUint32(o + 16, sc.enabled ? 1 : 0, true);
  });
  return { type: VIRTIO_GPU_RESP_OK_DISPLAY_INFO, body };
}

function getEdid(s: GpuState, scanout: number): Response {
  const sc = s.scanouts[scanout];
  // Without F_EDID the command does not exist; a scanout that does not exist is a bad parameter (QEMU).
  if (!s.edid) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  if (sc === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
  const edid = makeEdid(sc.width, sc.height, scanout + 1);
  const body = new Uint8Array(GPU_RESP_EDID_SIZE - GPU_HDR_SIZE);
  new DataView(body.buffer).setUint32(0, edid.length, true);
  body.set(edid.subarray(0, GPU_EDID_BLOB_SIZE), 8);
  return { type: VIRTIO_GPU_RESP_OK_EDID, body };
}

/** SET_SCANOUT (§5.7.6.8): resource 0 disables the scanout; the rectangle must lie in the resource. */
function setScanout(s: GpuState, r: Rect, scanout: number, resourceId: number): Response {
  if (s.scanouts[scanout] === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
  if (resourceId === 0) {
    s.setScanout(scanout, 0, { x: 0, y: 0, width: 0, height: 0 });
    return ok();
  }
  const res = s.resources.get(resourceId);
  if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
  // QEMU also refuses scanouts under 16 × 16.
  if (!rectInside(r, res.width, res.height) || r.width < 16 || r.height < 16) return err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
  s.setScanout(scanout, resourceId, r);
  return ok();
}

function transfer(s: GpuState, r: Rect, v: DataView, b: number): Response {
  // The u64 offset as a number: exact below 2^53; above, a non-safe value that Resource.transfer
  // refuses (it lies past any backing). No BigInt on the transfer path.
  const offset = v.getUint32(b + 20, true) * 2 ** 32 + v.getUint32(b + 16, true);
  const res = s.resources.get(v.getUint32(b + 24, true));
  if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
  if (!res.hasBacking) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  try {
    const problem = res.transfer(s.memory, r, offset);
    if (problem !== null) return err(VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
  } catch (e: unknown) {
    if (e instanceof GuestMemoryError) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
    throw e;
  }
  s.transferred(res, r.width * r.height * 4);
  return ok();
}

/** RESOURCE_ATTACH_BACKING: `nr_entries` × `{ addr u64, length u32, padding }` follow the request. */
function attachBacking(s: GpuState, id: number, count: number, rest: ChainReader): Response {
  const res = s.resources.get(id);
  if (res === undefined) return err(VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
  if (res.hasBacking) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  if (count === 0 || count > MAX_BACKING_ENTRIES || rest.remaining < count * GPU_MEM_ENTRY_SIZE) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
  const raw = rest.readBytes(count * GPU_MEM_ENTRY_SIZE);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const entries: BackingEntry[] = [];
  for (let i = 0; i < count; i++) {
    const addr = v.getBigUint64(i * GPU_MEM_ENTRY_SIZE, true);
    const length = v.getUint32(i * GPU_MEM_ENTRY_SIZE + 8, true);
    // Every page the guest names must be guest memory, now (and again on every copy).
    if (addr > BigInt(Number.MAX_SAFE_INTEGER) || !s.memory.isValidRange(Number(addr), length)) return err(VIRTIO_GPU_RESP_ERR_UNSPEC);
    entries.push({ addr: Number(addr), length });
  }
  res.attach(entries);
  return ok();
}

/**
 * One cursor-queue command (§5.7.6.10): UPDATE_CURSOR sets the image (resource 0 hides it) and the
 * position, MOVE_CURSOR only the position. The cursor queue has no responses (Linux posts none),
 * so a bad command is counted and dropped: the result says why, or null when it was done.
 */
export function cursorCommand(s: GpuState, head: Uint8Array): string | null {
  if (head.length < GPU_UPDATE_CURSOR_SIZE) return `cursor command of ${head.length} bytes, expected ${GPU_UPDATE_CURSOR_SIZE}`;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const type = v.getUint32(0, true);
  const b = GPU_HDR_SIZE;
  const scanout = v.getUint32(b, true);
  const x = v.getUint32(b + 4, true);
  const y = v.getUint32(b + 8, true);
  const resourceId = v.getUint32(b + 16, true);
  if (type !== VIRTIO_GPU_CMD_UPDATE_CURSOR && type !== VIRTIO_GPU_CMD_MOVE_CURSOR) return `command 0x${type.toString(16)} on the cursor queue`;
  if (s.scanouts[scanout] === undefined) return `cursor on scanout ${scanout}, which does not exist`;
  if (type === VIRTIO_GPU_CMD_MOVE_CURSOR) {
    s.cursor(false, scanout, x, y, null, 0, 0);
    return null;
  }
  let image: Resource | null = null;
  if (resourceId !== 0) {
    const res = s.resources.get(resourceId);
    if (res === undefined) return `cursor resource ${resourceId} does not exist`;
    if (res.width !== GPU_CURSOR_SIZE || res.height !== GPU_CURSOR_SIZE) return `cursor resource ${resourceId} is ${res.width}x${res.height}, not 64x64`;
    image = res;
  }
  s.cursor(true, scanout, x, y, image, v.getUint32(b + 20, true), v.getUint32(b + 24, true));
  return null;
}
