// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-snd as a device kind (devices/kind.ts): one playback stream into a WAV file (or
 * discarded) and one capture stream from a WAV file (or silence), paced in real time; QEMU 10's
 * vhost-user-snd-pci is the front-end and Linux's virtio_snd the driver.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { pathField } from '../options.js';
import { metric } from '../summary.js';
import { soundConformance } from './conformance.js';
import { DiscardSink, SilenceSource, WavFileSink, WavFileSource } from './host.js';
import { SoundDevice } from './model.js';
import { SOUND_DEVICE_ID } from './spec.js';

const options = z.object({
  playback: pathField('WAV file the playback stream writes (rewritten at each PREPARE with a new format); default: samples are discarded').optional(),
  capture: pathField('WAV file (integer PCM) the capture stream plays to the guest, then silence; default: silence').optional(),
});

export const soundKind = defineKind({
  name: 'sound',
  virtioId: SOUND_DEVICE_ID,
  vhostUserType: 'sound',
  description: 'virtio-snd (VIRTIO 1.3 §5.14): a playback stream into a WAV file and a capture stream from one, at the real sample rate',
  capabilities: ['playback', 'capture'],
  options,
  create: (o) =>
    new SoundDevice({
      playback: o.playback === undefined ? new DiscardSink() : new WavFileSink(o.playback),
      capture: o.capture === undefined ? new SilenceSource() : new WavFileSource(o.capture),
    }),
  conformance: soundConformance,
  conformanceSetups: [{ label: 'default', options: {}, expected: 'conformance.expected.txt' }],
  frontend: {
    // QEMU 10.0's vhost-user-snd-pci, seen on the wire (QEMU 10.0.2, Linux 6.12 virtio_snd): it acks
    // protocol features MQ, REPLY_ACK, CONFIG, RESET_DEVICE, CONFIGURE_MEM_SLOTS; GET_QUEUE_NUM; 4
    // queues of 64, each with SET_VRING_ERR; SET_FEATURES VERSION_1|INDIRECT|EVENT_IDX (+ bit 30);
    // SET_VRING_ENABLE 1 for all 4 after they are set up; the config only through GET_CONFIG (12
    // bytes, once per guest config read: 3 at probe). aplay/arecord are sample-exact
    // (src/cli/sound.e2e.test.ts).
    qemuDevice: 'vhost-user-snd-pci',
    reconnect: false,
    minQemu: '10.0',
  },
  guestModules: ['virtio_snd'],
  manifest: {
    fields: {
      playback: pathField('WAV file the guest plays into (relative to the run directory); default: discarded.').optional(),
      capture: pathField('WAV file the guest records from (relative to the manifest); default: silence.').optional(),
    },
    checkFiles(e, ctx, add) {
      if (typeof e['capture'] === 'string' && !ctx.exists(ctx.resolve(e['capture']))) add(['capture'], `no such file: ${e['capture']}`);
    },
    plan: (e, ctx) => ({
      options: {
        ...(typeof e['playback'] === 'string' ? { playback: ctx.resolveRunPath(e['playback']) } : {}),
        ...(typeof e['capture'] === 'string' ? { capture: ctx.resolveManifestPath(e['capture']) } : {}),
      },
    }),
  },
  summarize: (m) => {
    const streams = Array.isArray(m['streams']) ? (m['streams'] as Array<Record<string, unknown>>) : [];
    const xruns = streams.reduce((n, s) => n + (typeof s['xruns'] === 'number' ? s['xruns'] : 0), 0);
    return `${metric(m, ['control', 'requests'])} ctl, ${streams.map((s) => `${String(s['direction'])} ${String(s['state'])}`).join(', ')}, ${xruns} xruns`;
  },
});
