// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-can constants and wire layouts, VIRTIO 1.4 "CAN Device" (device-types/can/description.tex), spelled
 * as in the spec.
 *
 * Device ID 36; queues Txq 0, Rxq 1, Controlq 2. Features CAN_CLASSIC 0, CAN_FD 1, RTR_FRAMES 2
 * (needs CAN_CLASSIC), LATE_TX_ACK 3. Config `{ le16 status }` with CTRL_BUSOFF (bit 0).
 * Tx: `virtio_can_tx_out { le16 msg_type, le16 length, u8 reserved_classic_dlc, u8 padding,
 * le16 reserved_xl_priority, le32 flags, le32 can_id, u8 sdu[] }` (16-byte header) then the
 * device-writable `virtio_can_tx_in { u8 result }`. Rx: `virtio_can_rx`, the same header with
 * msg_type RX, then the sdu. Control: `{ le16 msg_type }` out, `{ u8 result }` in.
 * Does not own: any behaviour.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const CAN_DEVICE_ID = VIRTIO_ID.CAN;
export const VIRTIO_CAN_QUEUE_TX = 0;
export const VIRTIO_CAN_QUEUE_RX = 1;
export const VIRTIO_CAN_QUEUE_CONTROL = 2;
/** Queue size the device accepts (the rust-vmm device uses 64). */
export const CAN_QUEUE_MAX_SIZE = 1024;

/* Feature bits. */
export const VIRTIO_CAN_F_CAN_CLASSIC = 0;
export const VIRTIO_CAN_F_CAN_FD = 1;
export const VIRTIO_CAN_F_RTR_FRAMES = 2;
export const VIRTIO_CAN_F_LATE_TX_ACK = 3;

/** `status` (le16): the only config field. */
export const VIRTIO_CAN_CONFIG_SIZE = 2;
export const VIRTIO_CAN_S_CTRL_BUSOFF = 1 << 0;

/* Results. */
export const VIRTIO_CAN_RESULT_OK = 0;
export const VIRTIO_CAN_RESULT_NOT_OK = 1;

/* Message types. */
export const VIRTIO_CAN_TX = 0x0001;
export const VIRTIO_CAN_RX = 0x0101;
export const VIRTIO_CAN_SET_CTRL_MODE_START = 0x0201;
export const VIRTIO_CAN_SET_CTRL_MODE_STOP = 0x0202;

/* Flags (le32). Any other bit makes a frame one whose support was not negotiated. */
export const VIRTIO_CAN_FLAGS_EXTENDED = 0x8000;
export const VIRTIO_CAN_FLAGS_FD = 0x4000;
export const VIRTIO_CAN_FLAGS_RTR = 0x2000;
export const VIRTIO_CAN_FLAGS_KNOWN = VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_RTR;

/** The header of virtio_can_tx_out and virtio_can_rx (before `sdu`). */
export const VIRTIO_CAN_HDR_SIZE = 16;
/** Offsets in that header. */
export const HDR = { msgType: 0, length: 2, classicDlc: 4, padding: 5, xlPriority: 6, flags: 8, canId: 12 } as const;
