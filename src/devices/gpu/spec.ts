// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpu constants and wire layouts, VIRTIO 1.3 §5.7 "GPU Device", spelled as in the spec
 * (and Linux's include/uapi/linux/virtio_gpu.h).
 *
 * Device ID 16; queues controlq 0, cursorq 1 (§5.7.2). Features VIRGL 0, EDID 1, RESOURCE_UUID 2,
 * RESOURCE_BLOB 3, CONTEXT_INIT 4 (§5.7.3); a 2D device offers EDID at most. Config
 * `{ events_read, events_clear, num_scanouts, num_capsets }` u32 each (§5.7.4). Every request
 * starts with the 24-byte `virtio_gpu_ctrl_hdr` (§5.7.6.7); the bodies below are fixed offsets
 * after it, little-endian.
 * Does not own: any behaviour.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const GPU_DEVICE_ID = VIRTIO_ID.GPU;
export const VIRTIO_GPU_CONTROLQ = 0;
export const VIRTIO_GPU_CURSORQ = 1;
/** Largest queue the device accepts (QEMU 10's front-end asks for 64 control and 16 cursor entries). */
export const GPU_QUEUE_MAX_SIZE = 1024;

/* Feature bits (§5.7.3). */
export const VIRTIO_GPU_F_VIRGL = 0;
export const VIRTIO_GPU_F_EDID = 1;
export const VIRTIO_GPU_F_RESOURCE_UUID = 2;
export const VIRTIO_GPU_F_RESOURCE_BLOB = 3;
export const VIRTIO_GPU_F_CONTEXT_INIT = 4;

/* Config (§5.7.4): four u32. */
export const VIRTIO_GPU_CONFIG_SIZE = 16;
export const GPU_CFG_EVENTS_READ = 0;
export const GPU_CFG_EVENTS_CLEAR = 4;
export const GPU_CFG_NUM_SCANOUTS = 8;
export const GPU_CFG_NUM_CAPSETS = 12;
/** `events_read` bit: the display configuration changed (§5.7.4.1). */
export const VIRTIO_GPU_EVENT_DISPLAY = 1 << 0;
/** "num_scanouts ... The maximum value is 16" (§5.7.4). */
export const VIRTIO_GPU_MAX_SCANOUTS = 16;

/* Command types (§5.7.6.7). */
export const VIRTIO_GPU_CMD_GET_DISPLAY_INFO = 0x0100;
export const VIRTIO_GPU_CMD_RESOURCE_CREATE_2D = 0x0101;
export const VIRTIO_GPU_CMD_RESOURCE_UNREF = 0x0102;
export const VIRTIO_GPU_CMD_SET_SCANOUT = 0x0103;
export const VIRTIO_GPU_CMD_RESOURCE_FLUSH = 0x0104;
export const VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D = 0x0105;
export const VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING = 0x0106;
export const VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING = 0x0107;
export const VIRTIO_GPU_CMD_GET_CAPSET_INFO = 0x0108;
export const VIRTIO_GPU_CMD_GET_CAPSET = 0x0109;
export const VIRTIO_GPU_CMD_GET_EDID = 0x010a;
export const VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID = 0x010b;
export const VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB = 0x010c;
export const VIRTIO_GPU_CMD_SET_SCANOUT_BLOB = 0x010d;
export const VIRTIO_GPU_CMD_UPDATE_CURSOR = 0x0300;
export const VIRTIO_GPU_CMD_MOVE_CURSOR = 0x0301;

/* Response types. */
export const VIRTIO_GPU_RESP_OK_NODATA = 0x1100;
export const VIRTIO_GPU_RESP_OK_DISPLAY_INFO = 0x1101;
export const VIRTIO_GPU_RESP_OK_EDID = 0x1104;
export const VIRTIO_GPU_RESP_ERR_UNSPEC = 0x1200;
export const VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY = 0x1201;
export const VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID = 0x1202;
export const VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID = 0x1203;
export const VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID = 0x1204;
export const VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER = 0x1205;

/** Response names for logs and metrics. */
export const GPU_RESP_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_GPU_RESP_OK_NODATA]: 'OK_NODATA',
  [VIRTIO_GPU_RESP_OK_DISPLAY_INFO]: 'OK_DISPLAY_INFO',
  [VIRTIO_GPU_RESP_OK_EDID]: 'OK_EDID',
  [VIRTIO_GPU_RESP_ERR_UNSPEC]: 'ERR_UNSPEC',
  [VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY]: 'ERR_OUT_OF_MEMORY',
  [VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID]: 'ERR_INVALID_SCANOUT_ID',
  [VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID]: 'ERR_INVALID_RESOURCE_ID',
  [VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID]: 'ERR_INVALID_CONTEXT_ID',
  [VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER]: 'ERR_INVALID_PARAMETER',
};

/* virtio_gpu_ctrl_hdr (§5.7.6.7): type u32 @0, flags u32 @4, fence_id u64 @8, ctx_id u32 @16, ring_idx u8 @20, padding[3]. */
export const GPU_HDR_SIZE = 24;
export const VIRTIO_GPU_FLAG_FENCE = 1 << 0;
export const VIRTIO_GPU_FLAG_INFO_RING_IDX = 1 << 1;

/** `virtio_gpu_rect`: x, y, width, height (u32 each). */
export const GPU_RECT_SIZE = 16;

/* Request sizes, header included. */
/** GET_EDID: `scanout u32, padding u32`. */
export const GPU_GET_EDID_SIZE = GPU_HDR_SIZE + 8;
/** RESOURCE_CREATE_2D: `resource_id, format, width, height`. */
export const GPU_RESOURCE_CREATE_2D_SIZE = GPU_HDR_SIZE + 16;
/** RESOURCE_UNREF and RESOURCE_DETACH_BACKING: `resource_id, padding`. */
export const GPU_RESOURCE_ID_SIZE = GPU_HDR_SIZE + 8;
/** SET_SCANOUT: `rect r, scanout_id, resource_id`. */
export const GPU_SET_SCANOUT_SIZE = GPU_HDR_SIZE + GPU_RECT_SIZE + 8;
/** RESOURCE_FLUSH: `rect r, resource_id, padding`. */
export const GPU_RESOURCE_FLUSH_SIZE = GPU_HDR_SIZE + GPU_RECT_SIZE + 8;
/** TRANSFER_TO_HOST_2D: `rect r, offset u64, resource_id, padding`. */
export const GPU_TRANSFER_TO_HOST_2D_SIZE = GPU_HDR_SIZE + GPU_RECT_SIZE + 16;
/** RESOURCE_ATTACH_BACKING: `resource_id, nr_entries`, then the entries. */
export const GPU_ATTACH_BACKING_SIZE = GPU_HDR_SIZE + 8;
/** `virtio_gpu_mem_entry`: addr u64, length u32, padding u32. */
export const GPU_MEM_ENTRY_SIZE = 16;
/** UPDATE_CURSOR and MOVE_CURSOR: `pos{scanout_id, x, y, padding}, resource_id, hot_x, hot_y, padding`. */
export const GPU_UPDATE_CURSOR_SIZE = GPU_HDR_SIZE + 16 + 16;

/* Response sizes. */
/** OK_DISPLAY_INFO: header + 16 × `{ rect r, enabled u32, flags u32 }`. */
export const GPU_DISPLAY_ONE_SIZE = GPU_RECT_SIZE + 8;
export const GPU_RESP_DISPLAY_INFO_SIZE = GPU_HDR_SIZE + VIRTIO_GPU_MAX_SCANOUTS * GPU_DISPLAY_ONE_SIZE;
/** OK_EDID: header + `size u32, padding u32, edid[1024]`. */
export const GPU_EDID_BLOB_SIZE = 1024;
export const GPU_RESP_EDID_SIZE = GPU_HDR_SIZE + 8 + GPU_EDID_BLOB_SIZE;

/** The cursor image is 64 × 64 (§5.7.6.10: "The cursor image is 64x64"). */
export const GPU_CURSOR_SIZE = 64;

/* Formats (§5.7.6.8, enum virtio_gpu_formats): names give the byte order in memory. */
export const VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM = 1;
export const VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM = 2;
export const VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM = 3;
export const VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM = 4;
export const VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM = 67;
export const VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM = 68;
export const VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM = 121;
export const VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM = 134;

/**
 * Each format's byte positions of red, green, blue and alpha (-1: no alpha, opaque) in its 4-byte
 * pixel. B8G8R8X8 is what Linux's fbdev and primary planes use on x86 (DRM_FORMAT_HOST_XRGB8888),
 * B8G8R8A8 its cursor (DRM_FORMAT_HOST_ARGB8888).
 */
export const GPU_FORMATS: ReadonlyMap<number, { readonly name: string; readonly r: number; readonly g: number; readonly b: number; readonly a: number }> = new Map([
  [VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, { name: 'B8G8R8A8', r: 2, g: 1, b: 0, a: 3 }],
  [VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, { name: 'B8G8R8X8', r: 2, g: 1, b: 0, a: -1 }],
  [VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, { name: 'A8R8G8B8', r: 1, g: 2, b: 3, a: 0 }],
  [VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, { name: 'X8R8G8B8', r: 1, g: 2, b: 3, a: -1 }],
  [VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, { name: 'R8G8B8A8', r: 0, g: 1, b: 2, a: 3 }],
  [VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, { name: 'X8B8G8R8', r: 3, g: 2, b: 1, a: -1 }],
  [VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, { name: 'A8B8G8R8', r: 3, g: 2, b: 1, a: 0 }],
  [VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, { name: 'R8G8B8X8', r: 0, g: 1, b: 2, a: -1 }],
]);

/** Every format is 4 bytes a pixel. */
export const GPU_BYTES_PER_PIXEL = 4;
