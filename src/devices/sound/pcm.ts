// SPDX-License-Identifier: Apache-2.0
/**
 * One PCM stream of the virtio-snd device (VIRTIO 1.3 §5.14.6.6-7): its parameters, its state
 * machine (SET_PARAMS → PREPARE → START ↔ STOP → RELEASE), its pending I/O buffers and the period
 * clock that consumes (playback) or fills (capture) them at the stream's real rate.
 *
 * Timing: START arms a timer on the device's host reactor; period k completes at
 * t0 + k × period_time, never earlier (the timer fires at or after its due time, and due times are
 * computed from t0, so late timers do not accumulate drift). Each period moves `period_bytes`:
 * playback takes them from the oldest pending buffers into the sink and completes each buffer
 * once it is fully consumed (§5.14.6.8: "the device MUST NOT complete the I/O request until the
 * buffer is totally consumed"); capture writes them into the oldest buffers and completes each
 * once full. A period with nothing pending is an xrun (underrun or overrun), counted; the capture
 * source still advances, as a real microphone does.
 *
 * Playback data is read from guest memory when it is consumed, through the chain's reader, so no
 * host buffer is ever sized by the guest. Does not own: queues and control messages (model.ts).
 */
import type { HostReactor, HostTimer } from '../../device/contract.js';
import type { ChainReader, ChainWriter } from '../../queue/chain.js';
import type { CaptureSource, PlaybackSink } from './host.js';
import {
  PCM_RATES,
  SAMPLE_BYTES,
  SND_PCM_STATUS_SIZE,
  VIRTIO_SND_D_OUTPUT,
  VIRTIO_SND_R_PCM_PREPARE,
  VIRTIO_SND_R_PCM_RELEASE,
  VIRTIO_SND_R_PCM_SET_PARAMS,
  VIRTIO_SND_R_PCM_START,
  VIRTIO_SND_R_PCM_STOP,
  VIRTIO_SND_S_BAD_MSG,
  VIRTIO_SND_S_NOT_SUPP,
  VIRTIO_SND_S_OK,
} from './spec.js';
import type { WavFormat } from './wav.js';

/** What a stream offers (the body of its virtio_snd_pcm_info). */
export interface StreamInfo {
  readonly direction: number;
  readonly features: number;
  readonly formats: bigint;
  readonly rates: bigint;
  readonly channelsMin: number;
  readonly channelsMax: number;
}

/** virtio_snd_pcm_set_params, decoded. */
export interface PcmParams {
  readonly bufferBytes: number;
  readonly periodBytes: number;
  readonly features: number;
  readonly channels: number;
  readonly format: number;
  readonly rate: number;
}

export type StreamState = 'idle' | 'params' | 'prepared' | 'running' | 'stopped' | 'released';

/** Largest `buffer_bytes` accepted: 4 MiB is seconds of 8-channel audio at 192 kHz. */
export const MAX_BUFFER_BYTES = 4 << 20;
/** Shortest period accepted, so a guest cannot make the device run a timer per microsecond. */
export const MIN_PERIOD_MS = 1;

/** A buffer waiting on the tx or rx queue. */
interface PendingIo {
  readonly head: number;
  /** Playback: the PCM bytes after the xfer header. */
  readonly reader?: ChainReader;
  /** The writable part: the status (playback), or PCM space then the status (capture). */
  readonly writer: ChainWriter;
  /** Bytes of PCM the buffer carries (playback) or holds (capture). */
  readonly size: number;
  done: number;
}

/** Completes a buffer: writes its status, pushes it to its queue with `len` (the model notifies). */
export type Complete = (head: number, status: number, writer: ChainWriter, len: number, latencyBytes: number) => void;

/** Counters of one stream (metrics.ts). */
export interface StreamCounters {
  periods: number;
  bytes: number;
  buffers: number;
  xruns: number;
  badBuffers: number;
}

/** From which states each command is allowed (§5.14.6.6.1 state diagram). */
const ALLOWED: Readonly<Record<number, readonly StreamState[]>> = {
  [VIRTIO_SND_R_PCM_SET_PARAMS]: ['idle', 'params', 'prepared', 'released'],
  [VIRTIO_SND_R_PCM_PREPARE]: ['params', 'prepared', 'released'],
  [VIRTIO_SND_R_PCM_START]: ['prepared', 'stopped'],
  [VIRTIO_SND_R_PCM_STOP]: ['running'],
  [VIRTIO_SND_R_PCM_RELEASE]: ['params', 'prepared', 'stopped'],
};

export class PcmStream {
  state: StreamState = 'idle';
  params: PcmParams | undefined;
  readonly counters: StreamCounters = { periods: 0, bytes: 0, buffers: 0, xruns: 0, badBuffers: 0 };
  readonly #pending: PendingIo[] = [];
  #timer: HostTimer | undefined;
  #t0 = 0;
  #tick = 0;

  constructor(
    readonly id: number,
    readonly info: StreamInfo,
    readonly sink: PlaybackSink | undefined,
    readonly source: CaptureSource | undefined,
  ) {}

  get isOutput(): boolean {
    return this.info.direction === VIRTIO_SND_D_OUTPUT;
  }

  /** The WAV format of the current parameters. */
  get format(): WavFormat | undefined {
    const p = this.params;
    if (p === undefined) return undefined;
    return { channels: p.channels, rate: PCM_RATES[p.rate] ?? 0, bits: 8 * (SAMPLE_BYTES[p.format] ?? 0) };
  }

  /** Milliseconds per period. */
  get periodMs(): number {
    const f = this.format;
    const p = this.params;
    if (f === undefined || p === undefined) return 0;
    return Math.max(MIN_PERIOD_MS, (p.periodBytes * 1000) / (f.rate * f.channels * (f.bits / 8)));
  }

  /** Checks a SET_PARAMS body against what the stream offers; returns a status. */
  setParams(p: PcmParams): number {
    if (!this.#allowed(VIRTIO_SND_R_PCM_SET_PARAMS)) return VIRTIO_SND_S_BAD_MSG;
    const i = this.info;
    const bit = (mask: bigint, n: number) => n < 64 && ((mask >> BigInt(n)) & 1n) === 1n;
    if (!bit(i.formats, p.format) || !bit(i.rates, p.rate) || SAMPLE_BYTES[p.format] === undefined) return VIRTIO_SND_S_NOT_SUPP;
    if (p.channels < i.channelsMin || p.channels > i.channelsMax) return VIRTIO_SND_S_NOT_SUPP;
    if ((p.features & ~i.features) !== 0) return VIRTIO_SND_S_NOT_SUPP;
    const frame = p.channels * (SAMPLE_BYTES[p.format] ?? 1);
    if (p.periodBytes === 0 || p.periodBytes % frame !== 0 || p.bufferBytes < p.periodBytes || p.bufferBytes > MAX_BUFFER_BYTES) return VIRTIO_SND_S_BAD_MSG;
    this.params = p;
    this.state = 'params';
    return VIRTIO_SND_S_OK;
  }

  /** PREPARE, START, STOP or RELEASE; returns a status. `complete` finishes buffers RELEASE flushes. */
  command(code: number, reactor: HostReactor, complete: Complete): number {
    if (!this.#allowed(code)) return VIRTIO_SND_S_BAD_MSG;
    switch (code) {
      case VIRTIO_SND_R_PCM_PREPARE: {
        // Safe: PREPARE is allowed only from states reached through SET_PARAMS.
        const f = this.format!;
        if (this.isOutput) this.sink?.begin(f);
        this.state = 'prepared';
        return VIRTIO_SND_S_OK;
      }
      case VIRTIO_SND_R_PCM_START:
        this.state = 'running';
        this.#t0 = reactor.now();
        this.#tick = 0;
        this.#arm(reactor, complete);
        return VIRTIO_SND_S_OK;
      case VIRTIO_SND_R_PCM_STOP:
        this.#cancel();
        this.state = 'stopped';
        return VIRTIO_SND_S_OK;
      default:
        // RELEASE: "the device MUST complete all pending I/O messages for the specified stream ID".
        this.flush(complete);
        this.state = 'released';
        return VIRTIO_SND_S_OK;
    }
  }

  #allowed(code: number): boolean {
    return ALLOWED[code]?.includes(this.state) ?? false;
  }

  /** Whether I/O buffers may be queued now (after PREPARE, until RELEASE). */
  get acceptsIo(): boolean {
    return this.state === 'prepared' || this.state === 'running' || this.state === 'stopped';
  }

  /** Queues a playback buffer (its PCM bytes follow the xfer header in `reader`). */
  queueTx(head: number, reader: ChainReader, writer: ChainWriter): void {
    this.#pending.push({ head, reader, writer, size: reader.remaining, done: 0 });
    this.counters.buffers++;
  }

  /** Queues a capture buffer (`writer` spans PCM space and the status). */
  queueRx(head: number, writer: ChainWriter): void {
    this.#pending.push({ head, writer, size: writer.remaining - SND_PCM_STATUS_SIZE, done: 0 });
    this.counters.buffers++;
  }

  /** Buffers waiting. */
  get pendingBuffers(): number {
    return this.#pending.length;
  }

  #arm(reactor: HostReactor, complete: Complete): void {
    const due = this.#t0 + (this.#tick + 1) * this.periodMs;
    this.#timer = reactor.setTimer(Math.max(0, due - reactor.now()), () => {
      this.#timer = undefined;
      this.#tick++;
      this.period(complete);
      if (this.state === 'running') this.#arm(reactor, complete);
    });
  }

  #cancel(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** One period of the stream's clock. */
  period(complete: Complete): void {
    const p = this.params;
    const f = this.format;
    if (p === undefined || f === undefined) return;
    this.counters.periods++;
    if (this.#pending.length === 0) {
      this.counters.xruns++;
      // The microphone keeps going while nobody listens: that period's samples are lost.
      if (!this.isOutput) this.source?.read(new Uint8Array(p.periodBytes), f);
      return;
    }
    let credit = p.periodBytes;
    while (credit > 0) {
      const io = this.#pending[0];
      if (io === undefined) break;
      const n = Math.min(credit, io.size - io.done);
      if (io.reader !== undefined) this.sink?.write(io.reader.readBytes(n));
      else if (n > 0) {
        const chunk = new Uint8Array(n);
        this.source?.read(chunk, f);
        io.writer.write(chunk);
      }
      io.done += n;
      credit -= n;
      this.counters.bytes += n;
      if (io.done === io.size) {
        this.#pending.shift();
        this.#finish(io, complete);
      }
    }
  }

  /** Completes every pending buffer as it is (RELEASE, or the device going away). */
  flush(complete: Complete): void {
    this.#cancel();
    for (let io = this.#pending.shift(); io !== undefined; io = this.#pending.shift()) {
      if (io.reader === undefined) io.writer.skip(io.size - io.done);
      this.#finish(io, complete);
    }
  }

  #finish(io: PendingIo, complete: Complete): void {
    const latency = this.#pending.reduce((n, x) => n + x.size - x.done, 0);
    // Capture: used length = status + the bytes recorded (§5.14.6.8).
    complete(io.head, VIRTIO_SND_S_OK, io.writer, io.reader !== undefined ? SND_PCM_STATUS_SIZE : SND_PCM_STATUS_SIZE + io.done, latency);
  }

  /** Forgets everything (device reset): no completions, the queues are gone. */
  reset(): void {
    this.#cancel();
    this.#pending.length = 0;
    this.state = 'idle';
    this.params = undefined;
  }
}
