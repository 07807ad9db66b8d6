// SPDX-License-Identifier: Apache-2.0
/**
 * Device-independent VIRTIO 1.3 constants: device IDs (§5), reserved feature bits (§6), device
 * status bits (§2.1). Names are spelled as in the specification.
 *
 * Owns: numbers only. Does not own: any negotiation logic (that is `device/`).
 */

/** Device IDs, VIRTIO 1.3 §5 "Device Types". */
export const VIRTIO_ID = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  SCSI: 8,
  NINEP: 9,
  GPU: 16,
  CLOCK: 17,
  INPUT: 18,
  VSOCK: 19,
  CRYPTO: 20,
  IOMMU: 23,
  MEM: 24,
  SOUND: 25,
  FS: 26,
  PMEM: 27,
  RPMB: 28,
  SCMI: 32,
  I2C_ADAPTER: 34,
  WATCHDOG: 35,
  CAN: 36,
  GPIO: 41,
  SPI: 45,
} as const;
export type VirtioDeviceId = (typeof VIRTIO_ID)[keyof typeof VIRTIO_ID];

/** Returns the spec name of a device ID, or `id <n>` for IDs this table does not know. */
export function deviceIdName(id: number): string {
  for (const [name, value] of Object.entries(VIRTIO_ID)) if (value === id) return name;
  return `id ${id}`;
}

/* Reserved (device-independent) feature bits, VIRTIO 1.3 §6. Bit numbers, not masks. */
/** Legacy: notify when the avail ring is empty (offered by vhost-user back-ends for old drivers). */
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
/** Legacy: any descriptor layout. */
export const VIRTIO_F_ANY_LAYOUT = 27;
/** §2.7.5.3: the driver may use indirect descriptor tables. */
export const VIRTIO_F_INDIRECT_DESC = 28;
/** §2.7.7/§2.7.10: `used_event` / `avail_event` notification suppression. */
export const VIRTIO_F_EVENT_IDX = 29;
/** §6: compliance with this version of the spec; a device MUST offer it. */
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
/** §2.7.9 / §6: buffers are used in the order they were made available. */
export const VIRTIO_F_IN_ORDER = 35;
export const VIRTIO_F_ORDER_PLATFORM = 36;
export const VIRTIO_F_SR_IOV = 37;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
export const VIRTIO_F_RING_RESET = 40;
export const VIRTIO_F_ADMIN_VQ = 41;

/** Feature bit 30 is not a VIRTIO bit; vhost-user uses it for VHOST_USER_F_PROTOCOL_FEATURES. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;

/** Mask of a single feature bit as a bigint (feature words are 64 bits wide). */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** Mask of several feature bits. */
export function featureMask(...bits: number[]): bigint {
  let m = 0n;
  for (const b of bits) m |= featureBit(b);
  return m;
}

/** True when `bit` is set in `features`. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

/** Names of device-independent feature bits, for logs and reports. */
export const RESERVED_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_F_NOTIFY_ON_EMPTY]: 'NOTIFY_ON_EMPTY',
  [VIRTIO_F_ANY_LAYOUT]: 'ANY_LAYOUT',
  [VIRTIO_F_INDIRECT_DESC]: 'INDIRECT_DESC',
  [VIRTIO_F_EVENT_IDX]: 'EVENT_IDX',
  [VHOST_USER_F_PROTOCOL_FEATURES]: 'PROTOCOL_FEATURES',
  [VIRTIO_F_VERSION_1]: 'VERSION_1',
  [VIRTIO_F_ACCESS_PLATFORM]: 'ACCESS_PLATFORM',
  [VIRTIO_F_RING_PACKED]: 'RING_PACKED',
  [VIRTIO_F_IN_ORDER]: 'IN_ORDER',
  [VIRTIO_F_ORDER_PLATFORM]: 'ORDER_PLATFORM',
  [VIRTIO_F_SR_IOV]: 'SR_IOV',
  [VIRTIO_F_NOTIFICATION_DATA]: 'NOTIFICATION_DATA',
  [VIRTIO_F_NOTIF_CONFIG_DATA]: 'NOTIF_CONFIG_DATA',
  [VIRTIO_F_RING_RESET]: 'RING_RESET',
  [VIRTIO_F_ADMIN_VQ]: 'ADMIN_VQ',
};

/** Lists the set bits of a feature word, named where `names` (or the reserved table) knows them. */
export function describeFeatures(features: bigint, names: Readonly<Record<number, string>> = {}): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (hasFeature(features, bit)) out.push(names[bit] ?? RESERVED_FEATURE_NAMES[bit] ?? `bit${bit}`);
  }
  return out;
}

/* Device status field, VIRTIO 1.3 §2.1. */
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 64;
export const VIRTIO_CONFIG_S_FAILED = 128;
