// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-snd's part of the conformance suite (VIRTIO 1.3 §5.14), written against the
 * transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe (PCM_INFO of stream 0 on the control queue), the wrong-direction request (a
 * control request with no device-writable byte), and the sound checks: config counts match the
 * info replies, the PCM info is usable (channels, a known format and rate), an info query past the
 * last item and one larger than its buffer are refused, the PCM state machine refuses START before
 * SET_PARAMS, SET_PARAMS refuses a format not offered, a playback buffer completes only after
 * START (and with S_OK), I/O for a stream that does not exist or for the wrong direction gets
 * BAD_MSG, and RELEASE completes pending I/O. Requests are built field by field here.
 * Does not own: running checks, transports.
 */
import { fail, pass, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';

const SPEC = 'VIRTIO 1.3 §5.14';
const DEVICE_ID = 25;
const CONTROLQ = 0;
const EVENTQ = 1;
const TXQ = 2;
const RXQ = 3;
const S_OK = 0x8000;
const S_BAD_MSG = 0x8001;
const S_NOT_SUPP = 0x8002;
const R = { JACK_INFO: 1, PCM_INFO: 0x100, SET_PARAMS: 0x101, PREPARE: 0x102, RELEASE: 0x103, START: 0x104, STOP: 0x105, CHMAP_INFO: 0x200 } as const;
const PCM_INFO_SIZE = 32;

const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

/** Sends a control request and returns the reply bytes the device wrote (null when it wrote under 4). */
function control(d: ConformanceDriver, req: number[], replyLen = 4): Uint8Array | null {
  const reply = d.in(replyLen, 0xee);
  const used = d.request([d.out(Uint8Array.from(req)), reply], { queue: CONTROLQ });
  return used.len < 4 ? null : d.bytes(reply).subarray(0, used.len);
}

const status = (b: Uint8Array | null) => (b === null ? -1 : u32(b, 0));
const query = (code: number, start: number, count: number, size: number) => [...le32(code), ...le32(start), ...le32(count), ...le32(size)];
const pcm = (code: number, stream: number) => [...le32(code), ...le32(stream)];
/** SET_PARAMS: S16 (5), 2 channels, 48 kHz (bit 7), buffer 4 periods of `period` bytes (or `buffer`). */
const params = (stream: number, period: number, format = 5, buffer = 4 * period) => [...pcm(R.SET_PARAMS, stream), ...le32(buffer), ...le32(period), ...le32(0), 2, format, 7, 0];
const name = (s: number) => ({ [S_OK]: 'S_OK', [S_BAD_MSG]: 'S_BAD_MSG', [S_NOT_SUPP]: 'S_NOT_SUPP' })[s] ?? `0x${s.toString(16)}`;

/** Runs `steps` (label, request, wanted status) in order; the first mismatch fails. */
function expectStatuses(d: ConformanceDriver, steps: Array<[string, number[], number[]]>): CheckOutcome | null {
  for (const [label, req, want] of steps) {
    const s = status(control(d, req));
    if (!want.includes(s)) return fail(`${label}: status ${name(s)}, expected ${want.map(name).join(' or ')}`);
  }
  return null;
}

/** Config `{ jacks, streams, chmaps }`, or null without config access. */
function config(d: ConformanceDriver): { jacks: number; streams: number; chmaps: number } | null {
  const c = d.hasConfigAccess ? d.readConfig(0, 12) : null;
  return c === null ? null : { jacks: u32(c, 0), streams: u32(c, 4), chmaps: u32(c, 8) };
}

/** The first stream whose PCM info says `direction` (0 output, 1 input); -1 when none. */
function streamOf(d: ConformanceDriver, streams: number, direction: number): number {
  for (let i = 0; i < Math.min(streams, 16); i++) {
    const r = control(d, query(R.PCM_INFO, i, 1, PCM_INFO_SIZE), 4 + PCM_INFO_SIZE);
    if (status(r) === S_OK && r !== null && r[4 + 24] === direction) return i;
  }
  return -1;
}

const outputStream = (d: ConformanceDriver, streams: number) => streamOf(d, streams, 0);

const base = { level: 'MUST' as const, group: 'device' as const, devices: ['sound'] };

const checks: DeviceCheck[] = [
  {
    ...base,
    id: 'sound.info',
    title: 'Config counts match the info replies; every PCM stream has channels, a format and a rate',
    source: `${SPEC}.4 and §5.14.6.6.1 (virtio_snd_pcm_info); Linux virtio_snd refuses channels_min 0 or no known format/rate`,
    run(d) {
      d.start();
      const c = config(d) ?? { jacks: 0, streams: 1, chmaps: 0 };
      if (c.streams === 0 || c.streams > 64) return fail(`config says ${c.streams} streams`);
      for (const [what, code, n, size] of [['jack', R.JACK_INFO, c.jacks, 24], ['pcm', R.PCM_INFO, c.streams, 32], ['chmap', R.CHMAP_INFO, c.chmaps, 24]] as const) {
        if (n === 0) continue;
        const r = control(d, query(code, 0, n, size), 4 + n * size);
        if (status(r) !== S_OK || r === null || r.length !== 4 + n * size) return fail(`${what} info for ${n} items: status ${name(status(r))}, ${r?.length ?? 0} bytes`);
        if (code !== R.PCM_INFO) continue;
        for (let i = 0; i < n; i++) {
          const v = new DataView(r.buffer, r.byteOffset + 4 + i * size, size);
          const [formats, rates, min, max] = [v.getBigUint64(8, true), v.getBigUint64(16, true), v.getUint8(25), v.getUint8(26)];
          if (formats === 0n || rates === 0n || min === 0 || min > max) return fail(`stream ${i}: formats 0x${formats.toString(16)}, rates 0x${rates.toString(16)}, channels ${min}-${max}`);
        }
      }
      return pass(`${c.jacks} jacks, ${c.streams} streams, ${c.chmaps} channel maps`);
    },
  },
  {
    ...base,
    id: 'sound.info-out-of-range',
    title: 'An info query past the last item, or larger than its reply buffer, gets S_BAD_MSG',
    source: `${SPEC}.6.1 (start_id + count within the items; the reply is count × size bytes)`,
    run(d) {
      d.start();
      const c = config(d) ?? { jacks: 0, streams: 1, chmaps: 0 };
      return (
        expectStatuses(d, [
          ['PCM_INFO past the last stream', query(R.PCM_INFO, c.streams, 1, PCM_INFO_SIZE), [S_BAD_MSG]],
          ['PCM_INFO with start_id + count wrapping 32 bits', query(R.PCM_INFO, 1, 0xffffffff, PCM_INFO_SIZE), [S_BAD_MSG]],
          ['PCM_INFO of 1 stream into a 4-byte reply', query(R.PCM_INFO, 0, 1, PCM_INFO_SIZE), [S_BAD_MSG]],
          ['PCM_INFO with size 0xffffffff', query(R.PCM_INFO, 0, 1, 0xffffffff), [S_BAD_MSG]],
        ]) ?? pass('each refused with S_BAD_MSG')
      );
    },
  },
  {
    ...base,
    id: 'sound.state-machine',
    title: 'The PCM state machine refuses START before SET_PARAMS, and PREPARE before SET_PARAMS',
    source: `${SPEC}.6.6.1 (PCM command lifecycle)`,
    run(d) {
      d.start();
      const s = outputStream(d, config(d)?.streams ?? 1);
      if (s < 0) return pass('no output stream');
      return (
        expectStatuses(d, [
          ['START on a fresh stream', pcm(R.START, s), [S_BAD_MSG]],
          ['PREPARE on a fresh stream', pcm(R.PREPARE, s), [S_BAD_MSG]],
          ['STOP on a fresh stream', pcm(R.STOP, s), [S_BAD_MSG]],
        ]) ?? pass('START, PREPARE and STOP before SET_PARAMS refused')
      );
    },
  },
  {
    ...base,
    id: 'sound.bad-params',
    title: 'SET_PARAMS with a format not offered, a zero period or a bad stream id is refused',
    source: `${SPEC}.6.6.2 (the driver MUST NOT request a format not in formats; the device answers S_NOT_SUPP or S_BAD_MSG)`,
    run(d) {
      d.start();
      const s = outputStream(d, config(d)?.streams ?? 1);
      if (s < 0) return pass('no output stream');
      return (
        expectStatuses(d, [
          ['SET_PARAMS with format 63', params(s, 4096, 63), [S_NOT_SUPP, S_BAD_MSG]],
          ['SET_PARAMS with period 0', params(s, 0), [S_BAD_MSG, S_NOT_SUPP]],
          ['SET_PARAMS for stream 0xffffffff', params(0xffffffff, 4096), [S_BAD_MSG]],
          ['PREPARE for stream 0xffffffff', pcm(R.PREPARE, 0xffffffff), [S_BAD_MSG]],
        ]) ?? pass('each refused')
      );
    },
  },
  {
    ...base,
    id: 'sound.bad-buffer-sizes',
    title: 'SET_PARAMS with a buffer of 4 GiB, a buffer smaller than its period, or a period that is not whole frames is refused; the stream then still takes valid parameters',
    source: `${SPEC}.6.6.2 (buffer_bytes and period_bytes); the device caps what a guest can make it hold`,
    run(d) {
      d.start();
      const s = outputStream(d, config(d)?.streams ?? 1);
      if (s < 0) return pass('no output stream');
      return (
        expectStatuses(d, [
          ['buffer_bytes 0xffffffff', params(s, 4096, 5, 0xffffffff), [S_BAD_MSG, S_NOT_SUPP]],
          ['buffer_bytes smaller than period_bytes', params(s, 4096, 5, 1024), [S_BAD_MSG, S_NOT_SUPP]],
          ['period_bytes 4097 (not whole 4-byte frames)', params(s, 4097), [S_BAD_MSG, S_NOT_SUPP]],
          ['period_bytes 0xffffffff', params(s, 0xffffffff, 5, 0xffffffff), [S_BAD_MSG, S_NOT_SUPP]],
          ['valid parameters afterwards', params(s, 4096), [S_OK]],
        ]) ?? pass('each refused; valid parameters accepted after them')
      );
    },
  },
  {
    ...base,
    id: 'sound.playback',
    title: 'A playback buffer queued after PREPARE completes after START with S_OK; STOP and RELEASE succeed',
    source: `${SPEC}.6.8 (a tx buffer completes once consumed) and §5.14.6.6.1`,
    run(d) {
      d.start();
      const s = outputStream(d, config(d)?.streams ?? 1);
      if (s < 0) return pass('no output stream');
      // 192 bytes of S16 stereo at 48 kHz: a 1 ms period.
      const early = expectStatuses(d, [
        ['SET_PARAMS S16 stereo 48 kHz', params(s, 192), [S_OK]],
        ['PREPARE', pcm(R.PREPARE, s), [S_OK]],
        ['START', pcm(R.START, s), [S_OK]],
      ]);
      if (early !== null) return early;
      const st = d.in(8, 0xee);
      const used = d.request([d.out(Uint8Array.from([...le32(s), ...new Array<number>(192).fill(0x11)])), st], { queue: TXQ });
      const got = d.bytes(st);
      if (used.len !== 8 && used.len !== 0) return fail(`tx used length ${used.len}, expected 8 (the status)`);
      if (u32(got, 0) !== S_OK) return fail(`tx status ${name(u32(got, 0))}`);
      return expectStatuses(d, [['STOP', pcm(R.STOP, s), [S_OK]], ['RELEASE', pcm(R.RELEASE, s), [S_OK]]]) ?? pass('tx completed with S_OK; STOP and RELEASE answered S_OK');
    },
  },
  {
    ...base,
    id: 'sound.capture',
    title: 'A capture buffer queued after PREPARE is filled after START: S_OK, used length = the status plus the bytes recorded',
    source: `${SPEC}.6.8 (an rx buffer completes once full; used length covers the PCM bytes and the status)`,
    run(d) {
      d.start();
      const s = streamOf(d, config(d)?.streams ?? 1, 1);
      if (s < 0) return pass('no input stream');
      const early = expectStatuses(d, [
        ['SET_PARAMS S16 stereo 48 kHz', params(s, 192), [S_OK]],
        ['PREPARE', pcm(R.PREPARE, s), [S_OK]],
        ['START', pcm(R.START, s), [S_OK]],
      ]);
      if (early !== null) return early;
      const buf = d.in(192 + 8, 0xee);
      const used = d.request([d.out(Uint8Array.from(le32(s))), buf], { queue: RXQ });
      const got = d.bytes(buf);
      if (used.len !== 192 + 8) return fail(`rx used length ${used.len}, expected 200 (192 bytes of PCM and the status)`);
      if (u32(got, 192) !== S_OK) return fail(`rx status ${name(u32(got, 192))}`);
      return expectStatuses(d, [['STOP', pcm(R.STOP, s), [S_OK]], ['RELEASE', pcm(R.RELEASE, s), [S_OK]]]) ?? pass('one period recorded with S_OK');
    },
  },
  {
    ...base,
    id: 'sound.bad-io',
    title: 'I/O for a stream that does not exist, or on the wrong queue, gets S_BAD_MSG at once',
    source: `${SPEC}.6.8 (xfer.stream_id names a stream of the queue's direction)`,
    run(d) {
      d.start();
      for (const [label, q, stream] of [['tx for stream 0xffffffff', TXQ, 0xffffffff], ['tx for an unprepared stream 0', TXQ, 0], ['rx for stream 0xffffffff', RXQ, 0xffffffff]] as const) {
        const st = d.in(q === RXQ ? 72 : 8, 0xee);
        const bufs = q === TXQ ? [d.out(Uint8Array.from([...le32(stream), 1, 2, 3, 4])), st] : [d.out(Uint8Array.from(le32(stream))), st];
        const used = d.request(bufs, { queue: q });
        const b = d.bytes(st);
        const s = u32(b, b.length - 8);
        if (used.len !== 8 || s !== S_BAD_MSG) return fail(`${label}: used length ${used.len}, status ${name(s)}`);
      }
      return pass('answered S_BAD_MSG with used length 8');
    },
  },
];

export const soundConformance: DeviceConformance = {
  device: 'sound',
  deviceId: DEVICE_ID,
  configSize: 12,
  probeQueue: CONTROLQ,
  queues: [CONTROLQ, EVENTQ, TXQ, RXQ],
  probe(d) {
    const reply = d.in(4 + PCM_INFO_SIZE, 0xee);
    return {
      buffers: [d.out(Uint8Array.from(query(R.PCM_INFO, 0, 1, PCM_INFO_SIZE))), reply],
      verify: (used) => (used.len === 4 + PCM_INFO_SIZE && u32(d.bytes(reply), 0) === S_OK ? null : `PCM_INFO: used length ${used.len}, status 0x${u32(d.bytes(reply), 0).toString(16)}`),
    };
  },
  wrongDirection(d) {
    // A control request must have a device-writable reply; with none the device can say nothing.
    const buf = d.out(Uint8Array.from(query(R.PCM_INFO, 0, 1, PCM_INFO_SIZE)));
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return fail('the control request without a reply buffer was not returned');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a device-writable byte`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
