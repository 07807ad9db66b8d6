// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-net constants and wire structs, VIRTIO 1.3 §5.1 "Network Device".
 *
 * Owns: the device ID, queue indexes (§5.1.2), feature bits (§5.1.3), status bits and the
 * configuration layout (§5.1.4) as a codec with every offset written out, and `struct
 * virtio_net_hdr` (§5.1.6) with its flag and GSO values. Names are spelled as in the specification.
 * Does not own: forwarding (`switch.ts`), what a port offers or writes (`model.ts`).
 *
 * AVP devices are VIRTIO 1.x only, so the header is always the 12-byte layout with `num_buffers`
 * (§5.1.6.1: "The legacy driver only presented num_buffers in the struct virtio_net_hdr when
 * VIRTIO_NET_F_MRG_RXBUF was negotiated; without that feature the structure was 2 bytes shorter";
 * with VIRTIO_F_VERSION_1 it is always present). Every multi-byte field is little-endian (§1.4).
 */
import type { Codec } from '../../spec/codec.js';
import { VIRTIO_ID } from '../../spec/virtio.js';

export const NET_DEVICE_ID = VIRTIO_ID.NET;

/** §5.1.2: receiveq1 is queue 0, transmitq1 queue 1 (one queue pair; no MQ, no control queue). */
export const NET_RX_QUEUE = 0;
export const NET_TX_QUEUE = 1;

/* Feature bits, §5.1.3. Bit numbers, not masks. */
/** Device handles packets with partial checksum (offload to the device on transmit). */
export const VIRTIO_NET_F_CSUM = 0;
/** Driver handles packets with partial checksum (receive side). */
export const VIRTIO_NET_F_GUEST_CSUM = 1;
/** Control channel offloads reconfiguration support. */
export const VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2;
/** Device maximum MTU reporting is supported: `mtu` in config space. */
export const VIRTIO_NET_F_MTU = 3;
/** Device has given MAC address: `mac` in config space. */
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_GUEST_ECN = 9;
export const VIRTIO_NET_F_GUEST_UFO = 10;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_HOST_ECN = 13;
export const VIRTIO_NET_F_HOST_UFO = 14;
/** Driver can merge receive buffers: a packet may span several rx chains (`num_buffers`). */
export const VIRTIO_NET_F_MRG_RXBUF = 15;
/** Configuration status field is available. */
export const VIRTIO_NET_F_STATUS = 16;
/** Control channel is available. */
export const VIRTIO_NET_F_CTRL_VQ = 17;
export const VIRTIO_NET_F_CTRL_RX = 18;
export const VIRTIO_NET_F_CTRL_VLAN = 19;
export const VIRTIO_NET_F_CTRL_RX_EXTRA = 20;
export const VIRTIO_NET_F_GUEST_ANNOUNCE = 21;
/** Device supports multiqueue with automatic receive steering. */
export const VIRTIO_NET_F_MQ = 22;
export const VIRTIO_NET_F_CTRL_MAC_ADDR = 23;
export const VIRTIO_NET_F_HASH_REPORT = 57;
export const VIRTIO_NET_F_RSS = 60;
export const VIRTIO_NET_F_RSC_EXT = 61;
export const VIRTIO_NET_F_STANDBY = 62;
export const VIRTIO_NET_F_SPEED_DUPLEX = 63;

/** Names of the device-specific feature bits, for `describeFeatures` and logs. */
export const NET_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_NET_F_CSUM]: 'NET_CSUM',
  [VIRTIO_NET_F_GUEST_CSUM]: 'NET_GUEST_CSUM',
  [VIRTIO_NET_F_CTRL_GUEST_OFFLOADS]: 'NET_CTRL_GUEST_OFFLOADS',
  [VIRTIO_NET_F_MTU]: 'NET_MTU',
  [VIRTIO_NET_F_MAC]: 'NET_MAC',
  [VIRTIO_NET_F_GUEST_TSO4]: 'NET_GUEST_TSO4',
  [VIRTIO_NET_F_GUEST_TSO6]: 'NET_GUEST_TSO6',
  [VIRTIO_NET_F_GUEST_ECN]: 'NET_GUEST_ECN',
  [VIRTIO_NET_F_GUEST_UFO]: 'NET_GUEST_UFO',
  [VIRTIO_NET_F_HOST_TSO4]: 'NET_HOST_TSO4',
  [VIRTIO_NET_F_HOST_TSO6]: 'NET_HOST_TSO6',
  [VIRTIO_NET_F_HOST_ECN]: 'NET_HOST_ECN',
  [VIRTIO_NET_F_HOST_UFO]: 'NET_HOST_UFO',
  [VIRTIO_NET_F_MRG_RXBUF]: 'NET_MRG_RXBUF',
  [VIRTIO_NET_F_STATUS]: 'NET_STATUS',
  [VIRTIO_NET_F_CTRL_VQ]: 'NET_CTRL_VQ',
  [VIRTIO_NET_F_CTRL_RX]: 'NET_CTRL_RX',
  [VIRTIO_NET_F_CTRL_VLAN]: 'NET_CTRL_VLAN',
  [VIRTIO_NET_F_CTRL_RX_EXTRA]: 'NET_CTRL_RX_EXTRA',
  [VIRTIO_NET_F_GUEST_ANNOUNCE]: 'NET_GUEST_ANNOUNCE',
  [VIRTIO_NET_F_MQ]: 'NET_MQ',
  [VIRTIO_NET_F_CTRL_MAC_ADDR]: 'NET_CTRL_MAC_ADDR',
  [VIRTIO_NET_F_HASH_REPORT]: 'NET_HASH_REPORT',
  [VIRTIO_NET_F_RSS]: 'NET_RSS',
  [VIRTIO_NET_F_RSC_EXT]: 'NET_RSC_EXT',
  [VIRTIO_NET_F_STANDBY]: 'NET_STANDBY',
  [VIRTIO_NET_F_SPEED_DUPLEX]: 'NET_SPEED_DUPLEX',
};

/* `status` bits, §5.1.4. */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/* `virtio_net_hdr.flags`, §5.1.6. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;

/* `virtio_net_hdr.gso_type`, §5.1.6. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Ethernet header: destination MAC, source MAC, EtherType (IEEE 802.3). */
export const ETH_HLEN = 14;
/** Octets in a MAC address. */
export const ETH_ALEN = 6;
/**
 * Least MTU the switch accepts: 68, the least an IPv4 host must handle (RFC 791); Linux's
 * virtio_net refuses a config `mtu` below it (MIN_MTU = ETH_MIN_MTU = 68).
 */
export const NET_MIN_MTU = 68;
/** `mtu` is a le16. */
export const NET_MAX_MTU = 65535;
export const NET_DEFAULT_MTU = 1500;

/** `struct virtio_net_hdr` (§5.1.6, VERSION_1 layout, `hash_*` fields absent without HASH_REPORT). */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

/**
 * u8 flags @0, u8 gso_type @1, le16 hdr_len @2, le16 gso_size @4, le16 csum_start @6,
 * le16 csum_offset @8, le16 num_buffers @10: 12 bytes.
 */
export const virtioNetHdr: Codec<VirtioNetHdr> = {
  size: 12,
  decode(view, off) {
    return {
      flags: view.getUint8(off),
      gsoType: view.getUint8(off + 1),
      hdrLen: view.getUint16(off + 2, true),
      gsoSize: view.getUint16(off + 4, true),
      csumStart: view.getUint16(off + 6, true),
      csumOffset: view.getUint16(off + 8, true),
      numBuffers: view.getUint16(off + 10, true),
    };
  },
  encode(v, view, off) {
    view.setUint8(off, v.flags);
    view.setUint8(off + 1, v.gsoType);
    view.setUint16(off + 2, v.hdrLen, true);
    view.setUint16(off + 4, v.gsoSize, true);
    view.setUint16(off + 6, v.csumStart, true);
    view.setUint16(off + 8, v.csumOffset, true);
    view.setUint16(off + 10, v.numBuffers, true);
  },
};

/** Size of `struct virtio_net_hdr` with VIRTIO_F_VERSION_1. */
export const VIRTIO_NET_HDR_SIZE = virtioNetHdr.size;
/** Offset of `num_buffers` in the header. */
export const VIRTIO_NET_HDR_NUM_BUFFERS_OFF = 10;

/** The part of `struct virtio_net_config` (§5.1.4) AVP serves: up to and including `mtu`. */
export interface VirtioNetConfig {
  /** 6 octets. */
  mac: Uint8Array;
  status: number;
  maxVirtqueuePairs: number;
  mtu: number;
}

/** Field offsets of `struct virtio_net_config`, §5.1.4. */
export const VIRTIO_NET_CONFIG_OFF = {
  mac: 0,
  status: 6,
  maxVirtqueuePairs: 8,
  mtu: 10,
  speed: 12,
  duplex: 16,
} as const;

/**
 * u8 mac[6] @0, le16 status @6, le16 max_virtqueue_pairs @8, le16 mtu @10: 12 bytes. The fields
 * after `mtu` (speed, duplex, RSS parameters) belong to features AVP does not offer, and
 * §5.1.4 makes each field exist only with its feature, so the config space ends at `mtu`.
 */
export const virtioNetConfig: Codec<VirtioNetConfig> = {
  size: 12,
  decode(view, off) {
    const mac = new Uint8Array(ETH_ALEN);
    for (let i = 0; i < ETH_ALEN; i++) mac[i] = view.getUint8(off + i);
    return {
      mac,
      status: view.getUint16(off + VIRTIO_NET_CONFIG_OFF.status, true),
      maxVirtqueuePairs: view.getUint16(off + VIRTIO_NET_CONFIG_OFF.maxVirtqueuePairs, true),
      mtu: view.getUint16(off + VIRTIO_NET_CONFIG_OFF.mtu, true),
    };
  },
  encode(v, view, off) {
    for (let i = 0; i < ETH_ALEN; i++) view.setUint8(off + i, v.mac[i] ?? 0);
    view.setUint16(off + VIRTIO_NET_CONFIG_OFF.status, v.status, true);
    view.setUint16(off + VIRTIO_NET_CONFIG_OFF.maxVirtqueuePairs, v.maxVirtqueuePairs, true);
    view.setUint16(off + VIRTIO_NET_CONFIG_OFF.mtu, v.mtu, true);
  },
};

export const VIRTIO_NET_CONFIG_SIZE = virtioNetConfig.size;
