// SPDX-License-Identifier: Apache-2.0
/**
 * vhost-user protocol constants, spelled as in QEMU's `docs/interop/vhost-user.rst`
 * ("Message Specification", "Protocol features", "Front-end message types", "Back-end message
 * types"), plus the limits AVP enforces on the wire.
 *
 * Owns: request codes (both directions), header flag bits, protocol feature bits, payload limits,
 * the kick/call/err u64 masks, and name tables for logs.
 * Does not own: payload layouts or validation (`messages.ts`), framing (`parser.ts`), sockets
 * (`sys/`). The virtio feature bit `VHOST_USER_F_PROTOCOL_FEATURES` (30) lives in `spec/virtio.ts`
 * with the other feature bits.
 *
 * Marks used below: "[rvmm]" = defined only by rust-vmm/vhost (`vhost_user/message.rs`), absent
 * from the QEMU document; never offered or decoded by AVP.
 */

/** The 12-byte message header: `u32 request, u32 flags, u32 size` ("Header"). */
export interface VhostUserHeader {
  /** Message type: a front-end request code, or a back-end request code on the back-end channel. */
  readonly request: number;
  /** Version (bits 0-1), REPLY (bit 2), NEED_REPLY (bit 3); the other bits are reserved. */
  readonly flags: number;
  /** Payload length in bytes, header excluded. */
  readonly size: number;
}

/* ------------------------------------------------------------------------------------------ */
/* Front-end -> back-end request codes ("Front-end message types").                            */
/* ------------------------------------------------------------------------------------------ */

export const VHOST_USER_GET_FEATURES = 1;
export const VHOST_USER_SET_FEATURES = 2;
export const VHOST_USER_SET_OWNER = 3;
/** Deprecated: "back-ends either ignore this message, or use it to disable all rings". */
export const VHOST_USER_RESET_OWNER = 4;
export const VHOST_USER_SET_MEM_TABLE = 5;
export const VHOST_USER_SET_LOG_BASE = 6;
export const VHOST_USER_SET_LOG_FD = 7;
export const VHOST_USER_SET_VRING_NUM = 8;
export const VHOST_USER_SET_VRING_ADDR = 9;
export const VHOST_USER_SET_VRING_BASE = 10;
export const VHOST_USER_GET_VRING_BASE = 11;
export const VHOST_USER_SET_VRING_KICK = 12;
export const VHOST_USER_SET_VRING_CALL = 13;
export const VHOST_USER_SET_VRING_ERR = 14;
export const VHOST_USER_GET_PROTOCOL_FEATURES = 15;
export const VHOST_USER_SET_PROTOCOL_FEATURES = 16;
export const VHOST_USER_GET_QUEUE_NUM = 17;
export const VHOST_USER_SET_VRING_ENABLE = 18;
export const VHOST_USER_SEND_RARP = 19;
export const VHOST_USER_NET_SET_MTU = 20;
/** Previous name `VHOST_USER_SET_SLAVE_REQ_FD`. */
export const VHOST_USER_SET_BACKEND_REQ_FD = 21;
export const VHOST_USER_IOTLB_MSG = 22;
export const VHOST_USER_SET_VRING_ENDIAN = 23;
export const VHOST_USER_GET_CONFIG = 24;
export const VHOST_USER_SET_CONFIG = 25;
export const VHOST_USER_CREATE_CRYPTO_SESSION = 26;
export const VHOST_USER_CLOSE_CRYPTO_SESSION = 27;
export const VHOST_USER_POSTCOPY_ADVISE = 28;
export const VHOST_USER_POSTCOPY_LISTEN = 29;
export const VHOST_USER_POSTCOPY_END = 30;
export const VHOST_USER_GET_INFLIGHT_FD = 31;
export const VHOST_USER_SET_INFLIGHT_FD = 32;
export const VHOST_USER_GPU_SET_SOCKET = 33;
export const VHOST_USER_RESET_DEVICE = 34;
export const VHOST_USER_VRING_KICK = 35;
export const VHOST_USER_GET_MAX_MEM_SLOTS = 36;
export const VHOST_USER_ADD_MEM_REG = 37;
export const VHOST_USER_REM_MEM_REG = 38;
export const VHOST_USER_SET_STATUS = 39;
export const VHOST_USER_GET_STATUS = 40;
export const VHOST_USER_GET_SHARED_OBJECT = 41;
export const VHOST_USER_SET_DEVICE_STATE_FD = 42;
export const VHOST_USER_CHECK_DEVICE_STATE = 43;
/** [rvmm] only: not in the QEMU document; AVP neither sends nor decodes it. */
export const VHOST_USER_GET_SHMEM_CONFIG = 44;

/**
 * Every front-end request code by its name without the `VHOST_USER_` prefix. The typed message
 * union in `messages.ts` uses these names as its discriminant.
 */
export const FRONTEND_REQUEST_CODES = {
  GET_FEATURES: VHOST_USER_GET_FEATURES,
  SET_FEATURES: VHOST_USER_SET_FEATURES,
  SET_OWNER: VHOST_USER_SET_OWNER,
  RESET_OWNER: VHOST_USER_RESET_OWNER,
  SET_MEM_TABLE: VHOST_USER_SET_MEM_TABLE,
  SET_LOG_BASE: VHOST_USER_SET_LOG_BASE,
  SET_LOG_FD: VHOST_USER_SET_LOG_FD,
  SET_VRING_NUM: VHOST_USER_SET_VRING_NUM,
  SET_VRING_ADDR: VHOST_USER_SET_VRING_ADDR,
  SET_VRING_BASE: VHOST_USER_SET_VRING_BASE,
  GET_VRING_BASE: VHOST_USER_GET_VRING_BASE,
  SET_VRING_KICK: VHOST_USER_SET_VRING_KICK,
  SET_VRING_CALL: VHOST_USER_SET_VRING_CALL,
  SET_VRING_ERR: VHOST_USER_SET_VRING_ERR,
  GET_PROTOCOL_FEATURES: VHOST_USER_GET_PROTOCOL_FEATURES,
  SET_PROTOCOL_FEATURES: VHOST_USER_SET_PROTOCOL_FEATURES,
  GET_QUEUE_NUM: VHOST_USER_GET_QUEUE_NUM,
  SET_VRING_ENABLE: VHOST_USER_SET_VRING_ENABLE,
  SEND_RARP: VHOST_USER_SEND_RARP,
  NET_SET_MTU: VHOST_USER_NET_SET_MTU,
  SET_BACKEND_REQ_FD: VHOST_USER_SET_BACKEND_REQ_FD,
  IOTLB_MSG: VHOST_USER_IOTLB_MSG,
  SET_VRING_ENDIAN: VHOST_USER_SET_VRING_ENDIAN,
  GET_CONFIG: VHOST_USER_GET_CONFIG,
  SET_CONFIG: VHOST_USER_SET_CONFIG,
  CREATE_CRYPTO_SESSION: VHOST_USER_CREATE_CRYPTO_SESSION,
  CLOSE_CRYPTO_SESSION: VHOST_USER_CLOSE_CRYPTO_SESSION,
  POSTCOPY_ADVISE: VHOST_USER_POSTCOPY_ADVISE,
  POSTCOPY_LISTEN: VHOST_USER_POSTCOPY_LISTEN,
  POSTCOPY_END: VHOST_USER_POSTCOPY_END,
  GET_INFLIGHT_FD: VHOST_USER_GET_INFLIGHT_FD,
  SET_INFLIGHT_FD: VHOST_USER_SET_INFLIGHT_FD,
  GPU_SET_SOCKET: VHOST_USER_GPU_SET_SOCKET,
  RESET_DEVICE: VHOST_USER_RESET_DEVICE,
  VRING_KICK: VHOST_USER_VRING_KICK,
  GET_MAX_MEM_SLOTS: VHOST_USER_GET_MAX_MEM_SLOTS,
  ADD_MEM_REG: VHOST_USER_ADD_MEM_REG,
  REM_MEM_REG: VHOST_USER_REM_MEM_REG,
  SET_STATUS: VHOST_USER_SET_STATUS,
  GET_STATUS: VHOST_USER_GET_STATUS,
  GET_SHARED_OBJECT: VHOST_USER_GET_SHARED_OBJECT,
  SET_DEVICE_STATE_FD: VHOST_USER_SET_DEVICE_STATE_FD,
  CHECK_DEVICE_STATE: VHOST_USER_CHECK_DEVICE_STATE,
  GET_SHMEM_CONFIG: VHOST_USER_GET_SHMEM_CONFIG,
} as const;

export type FrontendRequestName = keyof typeof FRONTEND_REQUEST_CODES;

/* ------------------------------------------------------------------------------------------ */
/* Back-end -> front-end request codes, sent on the SET_BACKEND_REQ_FD socket                 */
/* ("Back-end message types"; previous names VHOST_USER_SLAVE_*).                              */
/* ------------------------------------------------------------------------------------------ */

export const VHOST_USER_BACKEND_IOTLB_MSG = 1;
export const VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2;
export const VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3;
export const VHOST_USER_BACKEND_VRING_CALL = 4;
export const VHOST_USER_BACKEND_VRING_ERR = 5;
export const VHOST_USER_BACKEND_SHARED_OBJECT_ADD = 6;
export const VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE = 7;
export const VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP = 8;
/** [rvmm] only. */
export const VHOST_USER_BACKEND_SHMEM_MAP = 9;
/** [rvmm] only. */
export const VHOST_USER_BACKEND_SHMEM_UNMAP = 10;

export const BACKEND_REQUEST_CODES = {
  IOTLB_MSG: VHOST_USER_BACKEND_IOTLB_MSG,
  CONFIG_CHANGE_MSG: VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
  VRING_HOST_NOTIFIER_MSG: VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG,
  VRING_CALL: VHOST_USER_BACKEND_VRING_CALL,
  VRING_ERR: VHOST_USER_BACKEND_VRING_ERR,
  SHARED_OBJECT_ADD: VHOST_USER_BACKEND_SHARED_OBJECT_ADD,
  SHARED_OBJECT_REMOVE: VHOST_USER_BACKEND_SHARED_OBJECT_REMOVE,
  SHARED_OBJECT_LOOKUP: VHOST_USER_BACKEND_SHARED_OBJECT_LOOKUP,
  SHMEM_MAP: VHOST_USER_BACKEND_SHMEM_MAP,
  SHMEM_UNMAP: VHOST_USER_BACKEND_SHMEM_UNMAP,
} as const;

export type BackendRequestName = keyof typeof BACKEND_REQUEST_CODES;

/* ------------------------------------------------------------------------------------------ */
/* Header                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Size of the header that precedes every payload. */
export const VHOST_USER_HDR_SIZE = 12;
/** "Lower 2 bits are the version (currently 0x01)". */
export const VHOST_USER_VERSION_MASK = 0x3;
export const VHOST_USER_VERSION = 0x1;
/** "Bit 2 is the reply flag - needs to be sent on each reply from the back-end". */
export const VHOST_USER_REPLY_MASK = 0x4;
/** "Bit 3 is the need_reply flag" (honoured once REPLY_ACK is negotiated). */
export const VHOST_USER_NEED_REPLY_MASK = 0x8;
/** Bits 4-31 carry no meaning; rust-vmm rejects a header that sets any of them, and so do we. */
export const VHOST_USER_RESERVED_FLAGS_MASK = 0xffff_fff0;

/* ------------------------------------------------------------------------------------------ */
/* Protocol feature bits ("Protocol features"). Bit numbers, not masks, as in spec/virtio.ts.  */
/* ------------------------------------------------------------------------------------------ */

export const VHOST_USER_PROTOCOL_F_MQ = 0;
export const VHOST_USER_PROTOCOL_F_LOG_SHMFD = 1;
export const VHOST_USER_PROTOCOL_F_RARP = 2;
export const VHOST_USER_PROTOCOL_F_REPLY_ACK = 3;
/** The document's feature table says `_MTU`; its NET_SET_MTU text says `_NET_MTU` (alias below). */
export const VHOST_USER_PROTOCOL_F_MTU = 4;
export const VHOST_USER_PROTOCOL_F_NET_MTU = VHOST_USER_PROTOCOL_F_MTU;
/** Previous name `VHOST_USER_PROTOCOL_F_SLAVE_REQ`. */
export const VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5;
export const VHOST_USER_PROTOCOL_F_CROSS_ENDIAN = 6;
export const VHOST_USER_PROTOCOL_F_CRYPTO_SESSION = 7;
export const VHOST_USER_PROTOCOL_F_PAGEFAULT = 8;
export const VHOST_USER_PROTOCOL_F_CONFIG = 9;
/** Previous name `VHOST_USER_PROTOCOL_F_SLAVE_SEND_FD`. */
export const VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = 10;
export const VHOST_USER_PROTOCOL_F_HOST_NOTIFIER = 11;
export const VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12;
export const VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13;
export const VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14;
export const VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;
export const VHOST_USER_PROTOCOL_F_STATUS = 16;
/**
 * Regions grow to 40 bytes (`xen_mmap_flags`, `domid`) once negotiated. `messages.ts` decodes the
 * 32-byte region only, so an AVP back-end must never offer this bit.
 */
export const VHOST_USER_PROTOCOL_F_XEN_MMAP = 17;
export const VHOST_USER_PROTOCOL_F_SHARED_OBJECT = 18;
export const VHOST_USER_PROTOCOL_F_DEVICE_STATE = 19;
// rust-vmm also defines bits 20 and 21 (GET_VRING_BASE_INFLIGHT, SHMEM), but their numbering has
// changed between rust-vmm releases and neither is in the QEMU document, so they are left out.

/** Protocol feature names for logs, keyed by bit number. */
export const PROTOCOL_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VHOST_USER_PROTOCOL_F_MQ]: 'MQ',
  [VHOST_USER_PROTOCOL_F_LOG_SHMFD]: 'LOG_SHMFD',
  [VHOST_USER_PROTOCOL_F_RARP]: 'RARP',
  [VHOST_USER_PROTOCOL_F_REPLY_ACK]: 'REPLY_ACK',
  [VHOST_USER_PROTOCOL_F_MTU]: 'MTU',
  [VHOST_USER_PROTOCOL_F_BACKEND_REQ]: 'BACKEND_REQ',
  [VHOST_USER_PROTOCOL_F_CROSS_ENDIAN]: 'CROSS_ENDIAN',
  [VHOST_USER_PROTOCOL_F_CRYPTO_SESSION]: 'CRYPTO_SESSION',
  [VHOST_USER_PROTOCOL_F_PAGEFAULT]: 'PAGEFAULT',
  [VHOST_USER_PROTOCOL_F_CONFIG]: 'CONFIG',
  [VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD]: 'BACKEND_SEND_FD',
  [VHOST_USER_PROTOCOL_F_HOST_NOTIFIER]: 'HOST_NOTIFIER',
  [VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD]: 'INFLIGHT_SHMFD',
  [VHOST_USER_PROTOCOL_F_RESET_DEVICE]: 'RESET_DEVICE',
  [VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS]: 'INBAND_NOTIFICATIONS',
  [VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS]: 'CONFIGURE_MEM_SLOTS',
  [VHOST_USER_PROTOCOL_F_STATUS]: 'STATUS',
  [VHOST_USER_PROTOCOL_F_XEN_MMAP]: 'XEN_MMAP',
  [VHOST_USER_PROTOCOL_F_SHARED_OBJECT]: 'SHARED_OBJECT',
  [VHOST_USER_PROTOCOL_F_DEVICE_STATE]: 'DEVICE_STATE',
};

/** Lists the set bits of a protocol feature word by name (`bit<n>` for bits this file lacks). */
export function describeProtocolFeatures(features: bigint): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((features >> BigInt(bit)) & 1n) out.push(PROTOCOL_FEATURE_NAMES[bit] ?? `bit${bit}`);
  }
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Other wire constants                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** Vhost feature bit 26: dirty-page logging for migration ("Migration"). Bit number. */
export const VHOST_F_LOG_ALL = 26;

/** SET_VRING_KICK/CALL/ERR u64: "Bits (0-7) of the payload contain the vring index". */
export const VHOST_USER_VRING_IDX_MASK = 0xff;
/** SET_VRING_KICK/CALL/ERR u64: "Bit 8 is the invalid FD flag" (no fd attached; poll instead). */
export const VHOST_USER_VRING_NOFD_MASK = 0x100;

/** Vring address `flags` bit number: `log` holds a valid used-ring log address ("Migration"). */
export const VHOST_VRING_F_LOG = 0;

/** Config message `flags` value: a front-end write of writable fields (QEMU's name). */
export const VHOST_SET_CONFIG_TYPE_FRONTEND = 0;
/** Config message `flags` value: a write during live migration (read-only fields allowed). */
export const VHOST_SET_CONFIG_TYPE_MIGRATION = 1;

/** Dirty-log page size ("Migration": `#define VHOST_LOG_PAGE 0x1000`). */
export const VHOST_LOG_PAGE = 0x1000;

/* ------------------------------------------------------------------------------------------ */
/* Limits AVP enforces                                                                          */
/* ------------------------------------------------------------------------------------------ */

/**
 * Largest payload accepted, checked from the header before anything is buffered (rust-vmm's
 * `MAX_MSG_SIZE`). The `size` field is a u32, so without a cap a peer could make us buffer 4 GiB.
 * Every message AVP decodes fits with room to spare: the largest are SET_MEM_TABLE
 * (8 + 32 × 8 = 264 bytes) and GET/SET_CONFIG (12 + 256 = 268 bytes, see
 * `VHOST_USER_MAX_CONFIG_SIZE`).
 */
export const VHOST_USER_MAX_PAYLOAD = 0x1000;

/**
 * Most fds accepted with one message (rust-vmm's `MAX_ATTACHED_FD_ENTRIES`); the most any
 * decoded message legitimately carries is 8 (SET_MEM_TABLE).
 */
export const VHOST_USER_MAX_FDS = 32;

/**
 * Most regions in one SET_MEM_TABLE: QEMU's `VHOST_MEMORY_BASELINE_NREGIONS`; the document's
 * table layout lists `region0 … region7`. QEMU switches to ADD_MEM_REG (CONFIGURE_MEM_SLOTS) for
 * more. rust-vmm accepts up to 32. A count of 0 is rejected (rust-vmm does too): it would unmap
 * all guest memory while the rings may still point into it.
 */
export const VHOST_MEMORY_BASELINE_NREGIONS = 8;

/**
 * Largest config-space access in GET/SET_CONFIG: QEMU's `VHOST_USER_MAX_CONFIG_SIZE` (QEMU never
 * sends more). rust-vmm instead allows `offset + size <= 0x1000`.
 */
export const VHOST_USER_MAX_CONFIG_SIZE = 256;
/** `offsetof(VhostUserConfig, region)`: offset, size and flags precede the config bytes. */
export const VHOST_USER_CONFIG_HDR_SIZE = 12;

/**
 * Largest CREATE_CRYPTO_SESSION payload accepted. The payload is the front-end's session
 * description (QEMU's `VhostUserCryptoSession`): 632 bytes in QEMU 7.2, 1072 from QEMU 8.0 (an
 * `op_code` and an asymmetric-key union were added). 2048 leaves room without trusting the peer.
 */
export const VHOST_USER_MAX_SESSION_SIZE = 2048;
/** Smallest CREATE_CRYPTO_SESSION payload: a session id (i64) at least. */
export const VHOST_USER_MIN_SESSION_SIZE = 8;

/* ------------------------------------------------------------------------------------------ */
/* Names for logs                                                                               */
/* ------------------------------------------------------------------------------------------ */

/** Inverts a name -> code table. */
function invert<N extends string>(codes: Readonly<Record<N, number>>): ReadonlyMap<number, N> {
  const out = new Map<number, N>();
  // Safe cast: Object.keys is typed string[], but the own keys of `codes` are exactly N.
  for (const name of Object.keys(codes) as N[]) out.set(codes[name], name);
  return out;
}

const FRONTEND_NAMES = invert<FrontendRequestName>(FRONTEND_REQUEST_CODES);
const BACKEND_NAMES = invert<BackendRequestName>(BACKEND_REQUEST_CODES);

/** The name of a known front-end request code, or undefined. */
export function frontendRequestNameOf(code: number): FrontendRequestName | undefined {
  return FRONTEND_NAMES.get(code);
}

/** A front-end request code for logs: `SET_VRING_ADDR`, or `request 99` when unknown. */
export function frontendRequestName(code: number): string {
  return FRONTEND_NAMES.get(code) ?? `request ${code}`;
}

/** A back-end request code for logs: `BACKEND_CONFIG_CHANGE_MSG`, or `backend request 99`. */
export function backendRequestName(code: number): string {
  const name = BACKEND_NAMES.get(code);
  return name === undefined ? `backend request ${code}` : `BACKEND_${name}`;
}
