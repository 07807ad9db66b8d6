// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-blk constants and wire structs, VIRTIO 1.3 §5.2 "Block Device".
 *
 * Owns: the device ID, feature bits (§5.2.3), request types and status codes (§5.2.6), the request
 * header and discard/write-zeroes segment codecs (§5.2.6), and the configuration layout (§5.2.4)
 * as a codec with every field offset written out. Names are spelled as in the specification.
 * Does not own: any request handling (`model.ts`) or what the fields are set to.
 *
 * Every multi-byte field is little-endian (§1.4; the legacy native-endian layout is not supported:
 * AVP devices are VIRTIO 1.x only).
 */
import { type Codec, getU64, setU64 } from '../../spec/codec.js';
import { VIRTIO_ID } from '../../spec/virtio.js';

export const BLK_DEVICE_ID = VIRTIO_ID.BLOCK;

/* Feature bits, §5.2.3. Bit numbers, not masks. */
/** Maximum size of any single segment is in `size_max`. */
export const VIRTIO_BLK_F_SIZE_MAX = 1;
/** Maximum number of segments in a request is in `seg_max`. */
export const VIRTIO_BLK_F_SEG_MAX = 2;
/** Disk-style geometry specified in `geometry`. */
export const VIRTIO_BLK_F_GEOMETRY = 4;
/** Device is read-only. */
export const VIRTIO_BLK_F_RO = 5;
/** Block size of disk is in `blk_size`. */
export const VIRTIO_BLK_F_BLK_SIZE = 6;
/** Cache flush command support. */
export const VIRTIO_BLK_F_FLUSH = 9;
/** Device exports information on optimal I/O alignment. */
export const VIRTIO_BLK_F_TOPOLOGY = 10;
/** Device can toggle its cache between writeback and writethrough modes. */
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
/** Device supports multiqueue. */
export const VIRTIO_BLK_F_MQ = 12;
/** Device can support discard command. */
export const VIRTIO_BLK_F_DISCARD = 13;
/** Device can support write zeroes command. */
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
/** Device supports providing storage lifetime information. */
export const VIRTIO_BLK_F_LIFETIME = 15;
/** Device supports secure erase command. */
export const VIRTIO_BLK_F_SECURE_ERASE = 16;
/** Device is a zoned block device. */
export const VIRTIO_BLK_F_ZONED = 17;
/** Legacy: request barriers. */
export const VIRTIO_BLK_F_BARRIER = 0;
/** Legacy: SCSI packet commands. */
export const VIRTIO_BLK_F_SCSI = 7;

/** Names of the device-specific feature bits, for `describeFeatures` and logs. */
export const BLK_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_BLK_F_BARRIER]: 'BLK_BARRIER',
  [VIRTIO_BLK_F_SIZE_MAX]: 'BLK_SIZE_MAX',
  [VIRTIO_BLK_F_SEG_MAX]: 'BLK_SEG_MAX',
  [VIRTIO_BLK_F_GEOMETRY]: 'BLK_GEOMETRY',
  [VIRTIO_BLK_F_RO]: 'BLK_RO',
  [VIRTIO_BLK_F_BLK_SIZE]: 'BLK_BLK_SIZE',
  [VIRTIO_BLK_F_SCSI]: 'BLK_SCSI',
  [VIRTIO_BLK_F_FLUSH]: 'BLK_FLUSH',
  [VIRTIO_BLK_F_TOPOLOGY]: 'BLK_TOPOLOGY',
  [VIRTIO_BLK_F_CONFIG_WCE]: 'BLK_CONFIG_WCE',
  [VIRTIO_BLK_F_MQ]: 'BLK_MQ',
  [VIRTIO_BLK_F_DISCARD]: 'BLK_DISCARD',
  [VIRTIO_BLK_F_WRITE_ZEROES]: 'BLK_WRITE_ZEROES',
  [VIRTIO_BLK_F_LIFETIME]: 'BLK_LIFETIME',
  [VIRTIO_BLK_F_SECURE_ERASE]: 'BLK_SECURE_ERASE',
  [VIRTIO_BLK_F_ZONED]: 'BLK_ZONED',
};

/* Request types, §5.2.6. */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

/* Status codes written in the last byte of every request, §5.2.6. */
/** Success. */
export const VIRTIO_BLK_S_OK = 0;
/** "device or driver error". */
export const VIRTIO_BLK_S_IOERR = 1;
/** "a request unsupported by device". */
export const VIRTIO_BLK_S_UNSUPP = 2;

/** `unmap` bit of a discard/write-zeroes segment's flags (§5.2.6); bits 1..31 are reserved. */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;

/** Length of the device ID string GET_ID returns: "a NUL-padded ASCII string up to 20 bytes long". */
export const VIRTIO_BLK_ID_BYTES = 20;

/** The protocol's unit: `sector` and `capacity` count 512-byte sectors whatever `blk_size` says (§5.2.5). */
export const VIRTIO_BLK_SECTOR_SIZE = 512;
export const VIRTIO_BLK_SECTOR_SHIFT = 9;

/** Size of the status byte (`u8 status`, the last field of `struct virtio_blk_req`). */
export const VIRTIO_BLK_STATUS_SIZE = 1;

/** `struct virtio_blk_req` minus `data[]` and `status` (§5.2.6). */
export interface VirtioBlkReqHeader {
  type: number;
  /** Formerly `ioprio`; ignored by the device. */
  reserved: number;
  /** Offset in 512-byte sectors; a u64 (values >= 2^53 decode to a non-safe number, see `getU64`). */
  sector: number;
}

/** le32 type, le32 reserved, le64 sector: 16 bytes. */
export const virtioBlkReqHeader: Codec<VirtioBlkReqHeader> = {
  size: 16,
  decode(view, off) {
    return {
      type: view.getUint32(off, true),
      reserved: view.getUint32(off + 4, true),
      sector: getU64(view, off + 8),
    };
  },
  encode(v, view, off) {
    view.setUint32(off, v.type, true);
    view.setUint32(off + 4, v.reserved, true);
    setU64(view, off + 8, v.sector);
  },
};

/** `struct virtio_blk_discard_write_zeroes` (§5.2.6): one range of a DISCARD or WRITE_ZEROES request. */
export interface VirtioBlkDiscardWriteZeroes {
  /** Start in 512-byte sectors (u64; see `getU64`). */
  sector: number;
  numSectors: number;
  /** Bit 0 `unmap`; bits 1..31 reserved. */
  flags: number;
}

/** le64 sector, le32 num_sectors, le32 flags: 16 bytes. */
export const virtioBlkDiscardWriteZeroes: Codec<VirtioBlkDiscardWriteZeroes> = {
  size: 16,
  decode(view, off) {
    return {
      sector: getU64(view, off),
      numSectors: view.getUint32(off + 8, true),
      flags: view.getUint32(off + 12, true),
    };
  },
  encode(v, view, off) {
    setU64(view, off, v.sector);
    view.setUint32(off + 8, v.numSectors, true);
    view.setUint32(off + 12, v.flags, true);
  },
};

/** `struct virtio_blk_geometry`. */
export interface VirtioBlkGeometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

/** `struct virtio_blk_topology`. */
export interface VirtioBlkTopology {
  /** Number of logical blocks per physical block (log2). */
  physicalBlockExp: number;
  /** Offset of first aligned logical block. */
  alignmentOffset: number;
  /** Suggested minimum I/O size in blocks. */
  minIoSize: number;
  /** Optimal (suggested maximum) I/O size in blocks. */
  optIoSize: number;
}

/**
 * `struct virtio_blk_config` up to `unused1` (§5.2.4). The secure-erase and zoned fields that
 * follow in VIRTIO 1.3 are not part of AVP's layout: neither feature is offered, and QEMU 7.2
 * reads 57 or 60 bytes.
 */
export interface VirtioBlkConfig {
  /** Capacity in 512-byte sectors (u64). */
  capacity: number;
  sizeMax: number;
  segMax: number;
  geometry: VirtioBlkGeometry;
  blkSize: number;
  topology: VirtioBlkTopology;
  /** 0 = writethrough, 1 = writeback (with VIRTIO_BLK_F_CONFIG_WCE). */
  writeback: number;
  numQueues: number;
  maxDiscardSectors: number;
  maxDiscardSeg: number;
  discardSectorAlignment: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSeg: number;
  writeZeroesMayUnmap: number;
}

/** Byte offset of every field of `struct virtio_blk_config` (§5.2.4). */
export const VIRTIO_BLK_CONFIG_OFF = {
  capacity: 0,
  sizeMax: 8,
  segMax: 12,
  geometryCylinders: 16,
  geometryHeads: 18,
  geometrySectors: 19,
  blkSize: 20,
  topologyPhysicalBlockExp: 24,
  topologyAlignmentOffset: 25,
  topologyMinIoSize: 26,
  topologyOptIoSize: 28,
  writeback: 32,
  unused0: 33,
  numQueues: 34,
  maxDiscardSectors: 36,
  maxDiscardSeg: 40,
  discardSectorAlignment: 44,
  maxWriteZeroesSectors: 48,
  maxWriteZeroesSeg: 52,
  writeZeroesMayUnmap: 56,
  unused1: 57,
} as const;

/** Size of AVP's config space: through `unused1[3]`, 60 bytes. */
export const VIRTIO_BLK_CONFIG_SIZE = 60;

const O = VIRTIO_BLK_CONFIG_OFF;

/**
 * The config layout as a codec. `encode` writes 0 in `unused0` and `unused1` (§5.2.5.1 device:
 * "MUST initialize padding bytes unused0 and unused1 to 0"); `decode` ignores them.
 */
export const virtioBlkConfig: Codec<VirtioBlkConfig> = {
  size: VIRTIO_BLK_CONFIG_SIZE,
  decode(view, off) {
    return {
      capacity: getU64(view, off + O.capacity),
      sizeMax: view.getUint32(off + O.sizeMax, true),
      segMax: view.getUint32(off + O.segMax, true),
      geometry: {
        cylinders: view.getUint16(off + O.geometryCylinders, true),
        heads: view.getUint8(off + O.geometryHeads),
        sectors: view.getUint8(off + O.geometrySectors),
      },
      blkSize: view.getUint32(off + O.blkSize, true),
      topology: {
        physicalBlockExp: view.getUint8(off + O.topologyPhysicalBlockExp),
        alignmentOffset: view.getUint8(off + O.topologyAlignmentOffset),
        minIoSize: view.getUint16(off + O.topologyMinIoSize, true),
        optIoSize: view.getUint32(off + O.topologyOptIoSize, true),
      },
      writeback: view.getUint8(off + O.writeback),
      numQueues: view.getUint16(off + O.numQueues, true),
      maxDiscardSectors: view.getUint32(off + O.maxDiscardSectors, true),
      maxDiscardSeg: view.getUint32(off + O.maxDiscardSeg, true),
      discardSectorAlignment: view.getUint32(off + O.discardSectorAlignment, true),
      maxWriteZeroesSectors: view.getUint32(off + O.maxWriteZeroesSectors, true),
      maxWriteZeroesSeg: view.getUint32(off + O.maxWriteZeroesSeg, true),
      writeZeroesMayUnmap: view.getUint8(off + O.writeZeroesMayUnmap),
    };
  },
  encode(v, view, off) {
    setU64(view, off + O.capacity, v.capacity);
    view.setUint32(off + O.sizeMax, v.sizeMax, true);
    view.setUint32(off + O.segMax, v.segMax, true);
    view.setUint16(off + O.geometryCylinders, v.geometry.cylinders, true);
    view.setUint8(off + O.geometryHeads, v.geometry.heads);
    view.setUint8(off + O.geometrySectors, v.geometry.sectors);
    view.setUint32(off + O.blkSize, v.blkSize, true);
    view.setUint8(off + O.topologyPhysicalBlockExp, v.topology.physicalBlockExp);
    view.setUint8(off + O.topologyAlignmentOffset, v.topology.alignmentOffset);
    view.setUint16(off + O.topologyMinIoSize, v.topology.minIoSize, true);
    view.setUint32(off + O.topologyOptIoSize, v.topology.optIoSize, true);
    view.setUint8(off + O.writeback, v.writeback);
    view.setUint8(off + O.unused0, 0);
    view.setUint16(off + O.numQueues, v.numQueues, true);
    view.setUint32(off + O.maxDiscardSectors, v.maxDiscardSectors, true);
    view.setUint32(off + O.maxDiscardSeg, v.maxDiscardSeg, true);
    view.setUint32(off + O.discardSectorAlignment, v.discardSectorAlignment, true);
    view.setUint32(off + O.maxWriteZeroesSectors, v.maxWriteZeroesSectors, true);
    view.setUint32(off + O.maxWriteZeroesSeg, v.maxWriteZeroesSeg, true);
    view.setUint8(off + O.writeZeroesMayUnmap, v.writeZeroesMayUnmap);
    for (let i = 0; i < 3; i++) view.setUint8(off + O.unused1 + i, 0);
  },
};

/* Device limits and defaults. */
/** Largest queue the device accepts; QEMU 7.2's vhost-user-blk-pci asks for 128 by default. */
export const BLK_QUEUE_MAX_SIZE_DEFAULT = 256;
/** Most request queues a device may have: `num_queues` is a le16 (and MQ needs at least 2 to mean anything). */
export const BLK_MAX_QUEUES = 0xffff;
