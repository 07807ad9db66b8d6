// SPDX-License-Identifier: Apache-2.0
/**
 * The virtio-snd device (VIRTIO 1.3 §5.14): one playback and one capture PCM stream, one jack and
 * a mono and a stereo channel map per direction, as QEMU 10's vhost-user-snd-pci and Linux's
 * virtio_snd driver use them.
 *
 * Owns: the config space, the control queue (JACK_INFO, PCM_INFO, CHMAP_INFO queries and the PCM
 * commands, each answered with a status), the tx and rx queues (buffers checked and handed to
 * their stream, or answered BAD_MSG at once), and holding event buffers. Stream state and timing
 * are `pcm.ts`'s; the samples' host side is `host.ts`'s.
 * Hostile input: every length is checked before a field is read; an info query may not reach past
 * the items that exist or the buffer it gets; a stream id that does not exist, a direction that
 * does not match the queue, a format, rate or channel count not offered get BAD_MSG or NOT_SUPP;
 * a chain too short for a status is returned with used length 0 and counted.
 */
import type { DeviceContext, VirtioDevice } from '../../device/contract.js';
import { serveQueue } from '../../device/serve.js';
import type { DescriptorChain, ChainWriter } from '../../queue/chain.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, featureMask } from '../../spec/virtio.js';
import { DiscardSink, SilenceSource, type CaptureSource, type PlaybackSink } from './host.js';
import type { SoundMetrics } from './metrics.js';
import { PcmStream, type Complete, type StreamInfo } from './pcm.js';
import {
  SND_CHMAP_INFO_SIZE,
  SND_HDR_SIZE,
  SND_JACK_INFO_SIZE,
  SND_PCM_HDR_SIZE,
  SND_PCM_INFO_SIZE,
  SND_PCM_SET_PARAMS_SIZE,
  SND_PCM_STATUS_SIZE,
  SND_PCM_XFER_SIZE,
  SND_QUERY_INFO_SIZE,
  SOUND_DEVICE_ID,
  SOUND_QUEUE_MAX_SIZE,
  VIRTIO_SND_CHMAP_FL,
  VIRTIO_SND_CHMAP_FR,
  VIRTIO_SND_CHMAP_MAX_SIZE,
  VIRTIO_SND_CHMAP_MONO,
  VIRTIO_SND_CONFIG_SIZE,
  VIRTIO_SND_D_INPUT,
  VIRTIO_SND_D_OUTPUT,
  VIRTIO_SND_PCM_FMT_S16,
  VIRTIO_SND_PCM_FMT_S32,
  VIRTIO_SND_PCM_FMT_U8,
  VIRTIO_SND_R_CHMAP_INFO,
  VIRTIO_SND_R_JACK_INFO,
  VIRTIO_SND_R_PCM_INFO,
  VIRTIO_SND_R_PCM_PREPARE,
  VIRTIO_SND_R_PCM_RELEASE,
  VIRTIO_SND_R_PCM_SET_PARAMS,
  VIRTIO_SND_R_PCM_START,
  VIRTIO_SND_R_PCM_STOP,
  VIRTIO_SND_S_BAD_MSG,
  VIRTIO_SND_S_NOT_SUPP,
  VIRTIO_SND_S_OK,
  VIRTIO_SND_VQ_CONTROL,
  VIRTIO_SND_VQ_EVENT,
  VIRTIO_SND_VQ_RX,
  VIRTIO_SND_VQ_TX,
} from './spec.js';

export interface SoundOptions {
  /** Where played samples go (default: discarded). */
  playback?: PlaybackSink;
  /** Where captured samples come from (default: silence). */
  capture?: CaptureSource;
}

/** Largest info reply built (count × size): far more than 3 jacks, 2 streams and 4 maps need. */
export const MAX_INFO_REPLY_BYTES = 64 * 1024;

const bits = (...n: number[]) => n.reduce((m, b) => m | (1n << BigInt(b)), 0n);
/** Rates offered: 8000, 11025, 16000, 22050, 32000, 44100, 48000 (bit numbers 1-7). */
const RATES = bits(1, 2, 3, 4, 5, 6, 7);
const FORMATS = bits(VIRTIO_SND_PCM_FMT_U8, VIRTIO_SND_PCM_FMT_S16, VIRTIO_SND_PCM_FMT_S32);
const STREAMS: readonly StreamInfo[] = [
  { direction: VIRTIO_SND_D_OUTPUT, features: 0, formats: FORMATS, rates: RATES, channelsMin: 1, channelsMax: 2 },
  { direction: VIRTIO_SND_D_INPUT, features: 0, formats: FORMATS, rates: RATES, channelsMin: 1, channelsMax: 2 },
];
/** Channel maps: mono and stereo for each direction. */
const CHMAPS: ReadonlyArray<{ direction: number; positions: readonly number[] }> = [
  { direction: VIRTIO_SND_D_OUTPUT, positions: [VIRTIO_SND_CHMAP_MONO] },
  { direction: VIRTIO_SND_D_OUTPUT, positions: [VIRTIO_SND_CHMAP_FL, VIRTIO_SND_CHMAP_FR] },
  { direction: VIRTIO_SND_D_INPUT, positions: [VIRTIO_SND_CHMAP_MONO] },
  { direction: VIRTIO_SND_D_INPUT, positions: [VIRTIO_SND_CHMAP_FL, VIRTIO_SND_CHMAP_FR] },
];
/** One line-out jack, connected. HDA default configuration: jack, rear, line out, 1/8", green. */
const JACKS: ReadonlyArray<{ defconf: number; caps: number; connected: boolean }> = [{ defconf: 0x01014010, caps: 0x00000014, connected: true }];

export class SoundDevice implements VirtioDevice {
  readonly deviceId = SOUND_DEVICE_ID;
  readonly name = 'sound';
  readonly queueMaxSizes = [SOUND_QUEUE_MAX_SIZE, SOUND_QUEUE_MAX_SIZE, SOUND_QUEUE_MAX_SIZE, SOUND_QUEUE_MAX_SIZE];
  readonly offeredFeatures = featureMask(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX);
  readonly configSize = VIRTIO_SND_CONFIG_SIZE;
  readonly streams: readonly PcmStream[];
  #ctx: DeviceContext | undefined;
  readonly #events: number[] = [];
  #control = { requests: 0, badMessages: 0, notSupported: 0 };
  #badChains = 0;

  constructor(opts: SoundOptions = {}) {
    // Safe: STREAMS has exactly one output and one input entry.
    this.streams = [new PcmStream(0, STREAMS[0]!, opts.playback ?? new DiscardSink(), undefined), new PcmStream(1, STREAMS[1]!, undefined, opts.capture ?? new SilenceSource())];
  }

  readConfig(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(VIRTIO_SND_CONFIG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, JACKS.length, true);
    v.setUint32(4, this.streams.length, true);
    v.setUint32(8, CHMAPS.length, true);
    return b.slice(offset, offset + length);
  }

  /** The config space is read-only (§5.14.4). */
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  queueNotify(index: number): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    if (index === VIRTIO_SND_VQ_CONTROL) serveQueue(ctx, index, (c) => this.#control1(c));
    else if (index === VIRTIO_SND_VQ_EVENT) this.#holdEvents(ctx);
    else if (index === VIRTIO_SND_VQ_TX || index === VIRTIO_SND_VQ_RX) this.#io(ctx, index);
  }

  // -------------------------------------------------------------------------------------------
  // Control queue

  /** Serves one control request; returns the used length. */
  #control1(chain: DescriptorChain): number {
    if (chain.writableLength < SND_HDR_SIZE) {
      this.#badChains++;
      return 0;
    }
    const w = chain.writer();
    const r = chain.reader();
    if (chain.readableLength < SND_HDR_SIZE) return this.#status(w, VIRTIO_SND_S_BAD_MSG);
    const req = new DataView(r.readBytes(Math.min(chain.readableLength, SND_PCM_SET_PARAMS_SIZE)).buffer);
    const code = req.getUint32(0, true);
    this.#control.requests++;
    switch (code) {
      case VIRTIO_SND_R_JACK_INFO:
        return this.#info(w, req, chain.writableLength, JACKS.length, SND_JACK_INFO_SIZE, (i, v) => this.#jackInfo(i, v));
      case VIRTIO_SND_R_PCM_INFO:
        return this.#info(w, req, chain.writableLength, this.streams.length, SND_PCM_INFO_SIZE, (i, v) => this.#pcmInfo(i, v));
      case VIRTIO_SND_R_CHMAP_INFO:
        return this.#info(w, req, chain.writableLength, CHMAPS.length, SND_CHMAP_INFO_SIZE, (i, v) => this.#chmapInfo(i, v));
      case VIRTIO_SND_R_PCM_SET_PARAMS:
      case VIRTIO_SND_R_PCM_PREPARE:
      case VIRTIO_SND_R_PCM_RELEASE:
      case VIRTIO_SND_R_PCM_START:
      case VIRTIO_SND_R_PCM_STOP:
        return this.#status(w, this.#pcmCommand(code, req));
      default:
        // JACK_REMAP (no jack offers VIRTIO_SND_JACK_F_REMAP), the CTL_* family (CTLS is not offered), unknown codes.
        return this.#status(w, VIRTIO_SND_S_NOT_SUPP);
    }
  }

  /** Writes a bare status reply. */
  #status(w: ChainWriter, status: number): number {
    if (status === VIRTIO_SND_S_BAD_MSG) this.#control.badMessages++;
    if (status === VIRTIO_SND_S_NOT_SUPP) this.#control.notSupported++;
    const b = new Uint8Array(SND_HDR_SIZE);
    new DataView(b.buffer).setUint32(0, status, true);
    w.write(b);
    return SND_HDR_SIZE;
  }

  /**
   * An info query (§5.14.6.1): `{ code, start_id, count, size }`; the reply is the status and
   * `count` items of `size` bytes (ours, zero-padded when the driver's `size` is larger).
   */
  #info(w: ChainWriter, req: DataView, writable: number, items: number, itemSize: number, fill: (i: number, v: DataView) => void): number {
    if (req.byteLength < SND_QUERY_INFO_SIZE) return this.#status(w, VIRTIO_SND_S_BAD_MSG);
    const start = req.getUint32(4, true);
    const count = req.getUint32(8, true);
    const size = req.getUint32(12, true);
    // Numbers from u32 fields: sums and products stay exact in a double (< 2^64).
    const bytes = count * size;
    if (start + count > items || size < itemSize || bytes > MAX_INFO_REPLY_BYTES || SND_HDR_SIZE + bytes > writable) return this.#status(w, VIRTIO_SND_S_BAD_MSG);
    const reply = new Uint8Array(SND_HDR_SIZE + bytes);
    const v = new DataView(reply.buffer);
    v.setUint32(0, VIRTIO_SND_S_OK, true);
    for (let i = 0; i < count; i++) fill(start + i, new DataView(reply.buffer, SND_HDR_SIZE + i * size, itemSize));
    w.write(reply);
    return reply.length;
  }

  #jackInfo(i: number, v: DataView): void {
    // Safe: #info checked start + count <= JACKS.length.
    const j = JACKS[i]!;
    v.setUint32(0, 0, true); // hda_fn_nid
    v.setUint32(4, 0, true); // features: no REMAP
    v.setUint32(8, j.defconf, true);
    v.setUint32(12, j.caps, true);
    v.setUint8(16, j.connected ? 1 : 0);
  }

  #pcmInfo(i: number, v: DataView): void {
    // Safe: #info checked start + count <= this.streams.length.
    const s = this.streams[i]!.info;
    v.setUint32(0, 0, true); // hda_fn_nid: both streams belong to one function, so one ALSA PCM device
    v.setUint32(4, s.features, true);
    v.setBigUint64(8, s.formats, true);
    v.setBigUint64(16, s.rates, true);
    v.setUint8(24, s.direction);
    v.setUint8(25, s.channelsMin);
    v.setUint8(26, s.channelsMax);
  }

  #chmapInfo(i: number, v: DataView): void {
    // Safe: #info checked start + count <= CHMAPS.length.
    const m = CHMAPS[i]!;
    v.setUint32(0, 0, true);
    v.setUint8(4, m.direction);
    v.setUint8(5, m.positions.length);
    m.positions.slice(0, VIRTIO_SND_CHMAP_MAX_SIZE).forEach((p, k) => v.setUint8(6 + k, p));
  }

  /** SET_PARAMS, PREPARE, START, STOP, RELEASE: `{ code, stream_id }` (+ parameters). */
  #pcmCommand(code: number, req: DataView): number {
    if (req.byteLength < SND_PCM_HDR_SIZE) return VIRTIO_SND_S_BAD_MSG;
    const stream = this.streams[req.getUint32(4, true)];
    const ctx = this.#ctx;
    if (stream === undefined || ctx === undefined) return VIRTIO_SND_S_BAD_MSG;
    if (code !== VIRTIO_SND_R_PCM_SET_PARAMS) return stream.command(code, ctx.reactor, this.#completer(ctx, stream.isOutput ? VIRTIO_SND_VQ_TX : VIRTIO_SND_VQ_RX));
    if (req.byteLength < SND_PCM_SET_PARAMS_SIZE) return VIRTIO_SND_S_BAD_MSG;
    return stream.setParams({
      bufferBytes: req.getUint32(8, true),
      periodBytes: req.getUint32(12, true),
      features: req.getUint32(16, true),
      channels: req.getUint8(20),
      format: req.getUint8(21),
      rate: req.getUint8(22),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Event queue

  /** Keeps event buffers for jack and xrun events (none are sent today: the jack never changes). */
  #holdEvents(ctx: DeviceContext): void {
    const q = ctx.queue(VIRTIO_SND_VQ_EVENT);
    if (q === undefined) return;
    do {
      q.disableNotifications();
      for (let c = q.pop(); c !== null; c = q.pop()) this.#events.push(c.head);
    } while (q.enableNotifications());
  }

  // -------------------------------------------------------------------------------------------
  // I/O queues

  /** Completes I/O buffers of queue `index`: status at the writer, then used, then a notification. */
  #completer(ctx: DeviceContext, index: number): Complete {
    return (head, status, writer, len, latency) => {
      const q = ctx.queue(index);
      if (q === undefined) return;
      const b = new Uint8Array(SND_PCM_STATUS_SIZE);
      const v = new DataView(b.buffer);
      v.setUint32(0, status, true);
      v.setUint32(4, latency, true);
      writer.write(b);
      q.pushUsed(head, len);
      if (q.needsNotification()) ctx.notify(index);
    };
  }

  /** Takes every available buffer of the tx or rx queue. */
  #io(ctx: DeviceContext, index: number): void {
    const q = ctx.queue(index);
    if (q === undefined) return;
    const complete = this.#completer(ctx, index);
    // The serveQueue pattern (§2.7.10), with completions left to the streams' clocks.
    do {
      q.disableNotifications();
      for (let c = q.pop(); c !== null; c = q.pop()) this.#io1(c, index, complete);
    } while (q.enableNotifications());
    if (q.needsNotification()) ctx.notify(index);
  }

  /**
   * One I/O buffer (§5.14.6.8): `xfer{stream_id}` readable first; for playback PCM bytes follow
   * and the writable part is the status; for capture the writable part is PCM space then status.
   */
  #io1(chain: DescriptorChain, index: number, complete: Complete): void {
    const q = this.#ctx?.queue(index);
    if (chain.writableLength < SND_PCM_STATUS_SIZE) {
      // No room for a status: nothing can be reported.
      this.#badChains++;
      q?.pushUsed(chain.head, 0);
      return;
    }
    const r = chain.reader();
    const w = chain.writer();
    const tx = index === VIRTIO_SND_VQ_TX;
    const stream = chain.readableLength < SND_PCM_XFER_SIZE ? undefined : this.streams[new DataView(r.readBytes(SND_PCM_XFER_SIZE).buffer).getUint32(0, true)];
    const shapeOk = tx ? chain.writableLength === SND_PCM_STATUS_SIZE : chain.readableLength === SND_PCM_XFER_SIZE;
    if (stream === undefined || stream.isOutput !== tx || !stream.acceptsIo || !shapeOk) {
      if (stream !== undefined) stream.counters.badBuffers++;
      if (!tx) w.skip(chain.writableLength - SND_PCM_STATUS_SIZE);
      complete(chain.head, VIRTIO_SND_S_BAD_MSG, w, SND_PCM_STATUS_SIZE, 0);
      return;
    }
    if (tx) stream.queueTx(chain.head, r, w);
    else stream.queueRx(chain.head, w);
  }

  reset(): void {
    for (const s of this.streams) s.reset();
    this.#events.length = 0;
    this.#ctx = undefined;
  }

  dispose(): void {
    for (const s of this.streams) {
      s.sink?.close();
      s.source?.close();
    }
  }

  metrics(): SoundMetrics {
    return {
      device: 'sound',
      control: { ...this.#control },
      streams: this.streams.map((s) => ({ id: s.id, direction: s.isOutput ? 'output' : 'input', state: s.state, ...s.counters, pending: s.pendingBuffers })),
      badChains: this.#badChains,
      events: { held: this.#events.length },
    };
  }
}
