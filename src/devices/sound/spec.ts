// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-snd constants and wire layouts, VIRTIO 1.3 §5.14 "Sound Device", spelled as in the spec.
 *
 * Device ID 25; queues controlq 0, eventq 1, txq 2, rxq 3 (§5.14.2); feature CTLS (bit 0, not
 * offered by AVP). Config `{ jacks, streams, chmaps }` u32 each (§5.14.4). Layouts are fixed
 * offsets (little-endian); the codecs live in `wire.ts`.
 * Does not own: any behaviour.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const SOUND_DEVICE_ID = VIRTIO_ID.SOUND;
export const VIRTIO_SND_VQ_CONTROL = 0;
export const VIRTIO_SND_VQ_EVENT = 1;
export const VIRTIO_SND_VQ_TX = 2;
export const VIRTIO_SND_VQ_RX = 3;
/** Queue size the device accepts (QEMU 10's vhost-user-snd uses 64). */
export const SOUND_QUEUE_MAX_SIZE = 1024;
/** Config without CTLS: jacks, streams, chmaps (u32 each). */
export const VIRTIO_SND_CONFIG_SIZE = 12;

/* Request codes (§5.14.6.1). */
export const VIRTIO_SND_R_JACK_INFO = 1;
export const VIRTIO_SND_R_JACK_REMAP = 2;
export const VIRTIO_SND_R_PCM_INFO = 0x0100;
export const VIRTIO_SND_R_PCM_SET_PARAMS = 0x0101;
export const VIRTIO_SND_R_PCM_PREPARE = 0x0102;
export const VIRTIO_SND_R_PCM_RELEASE = 0x0103;
export const VIRTIO_SND_R_PCM_START = 0x0104;
export const VIRTIO_SND_R_PCM_STOP = 0x0105;
export const VIRTIO_SND_R_CHMAP_INFO = 0x0200;
/* Events. */
export const VIRTIO_SND_EVT_JACK_CONNECTED = 0x1000;
export const VIRTIO_SND_EVT_JACK_DISCONNECTED = 0x1001;
export const VIRTIO_SND_EVT_PCM_PERIOD_ELAPSED = 0x1100;
export const VIRTIO_SND_EVT_PCM_XRUN = 0x1101;
/* Status codes. */
export const VIRTIO_SND_S_OK = 0x8000;
export const VIRTIO_SND_S_BAD_MSG = 0x8001;
export const VIRTIO_SND_S_NOT_SUPP = 0x8002;
export const VIRTIO_SND_S_IO_ERR = 0x8003;

/* Data flow directions (§5.14.6.6.1). */
export const VIRTIO_SND_D_OUTPUT = 0;
export const VIRTIO_SND_D_INPUT = 1;

/* PCM stream features (bit numbers). */
export const VIRTIO_SND_PCM_F_SHMEM_HOST = 0;
export const VIRTIO_SND_PCM_F_SHMEM_GUEST = 1;
export const VIRTIO_SND_PCM_F_MSG_POLLING = 2;
export const VIRTIO_SND_PCM_F_EVT_SHMEM_PERIODS = 3;
export const VIRTIO_SND_PCM_F_EVT_XRUNS = 4;

/* PCM sample formats (bit numbers in `formats`). */
export const VIRTIO_SND_PCM_FMT_S8 = 3;
export const VIRTIO_SND_PCM_FMT_U8 = 4;
export const VIRTIO_SND_PCM_FMT_S16 = 5;
export const VIRTIO_SND_PCM_FMT_S32 = 17;

/** Bytes per sample of the formats AVP offers. */
export const SAMPLE_BYTES: Readonly<Record<number, number>> = {
  [VIRTIO_SND_PCM_FMT_S8]: 1,
  [VIRTIO_SND_PCM_FMT_U8]: 1,
  [VIRTIO_SND_PCM_FMT_S16]: 2,
  [VIRTIO_SND_PCM_FMT_S32]: 4,
};

/** PCM frame rates: bit number → frames per second (§5.14.6.6.1). */
export const PCM_RATES: readonly number[] = [5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000, 384000, 12000, 24000];

/* Channel positions (§5.14.6.8.1, ALSA's order). */
export const VIRTIO_SND_CHMAP_MONO = 2;
export const VIRTIO_SND_CHMAP_FL = 3;
export const VIRTIO_SND_CHMAP_FR = 4;
/** Entries of `positions` in virtio_snd_chmap_info. */
export const VIRTIO_SND_CHMAP_MAX_SIZE = 18;

/* Structure sizes (§5.14.6). */
export const SND_HDR_SIZE = 4;
export const SND_QUERY_INFO_SIZE = 16;
export const SND_PCM_HDR_SIZE = 8;
export const SND_PCM_SET_PARAMS_SIZE = 24;
export const SND_JACK_INFO_SIZE = 24;
export const SND_PCM_INFO_SIZE = 32;
export const SND_CHMAP_INFO_SIZE = 24;
export const SND_PCM_XFER_SIZE = 4;
export const SND_PCM_STATUS_SIZE = 8;
export const SND_EVENT_SIZE = 8;
