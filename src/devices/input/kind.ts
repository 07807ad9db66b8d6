// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-input as a device kind (devices/kind.ts): a keyboard, tablet, touch screen, multitouch
 * screen or set of buttons, QEMU 10's vhost-user-input-pci as the front-end (it asks the back-end
 * for every config byte, so CONFIG is a must), Linux's virtio_input with evdev in the guest
 * (/dev/input/eventN), and the host driving it.
 *
 * Control socket (`--control-socket PATH`; in a platform run `<runDir>/<vm>/<name>.ctl`): one
 * request per line, one JSON reply per line (devices/control-socket.ts). A request is an input
 * step (steps.ts: `key KEY_ENTER`, `touch 120,300`, `type hello`, `down/move/up`, `event ...`),
 * answered `{"ok":true,"frames":N,"dropped":0,"pending":0,"driver":true}`, or `info` (metrics).
 * `avp input VM STEP...` sends steps to a running platform.
 *
 * In a manifest an input device is a device: `- kind: input` with `type: touch` (and `script:`
 * steps, run when the guest's driver is ready); a keyboard and a touch screen are two entries,
 * as they are two virtio devices.
 */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { enumField, intField, pathField, stringField } from '../options.js';
import { metric } from '../summary.js';
import { inputConformance } from './conformance.js';
import { InputConfigError, InputStepError } from './errors.js';
import { InputDevice, checkScript } from './model.js';
import { INPUT_TYPES, makeProfile, type InputProfile } from './profiles.js';
import { INPUT_DEVICE_ID, KEY_CODES } from './spec.js';

const PRINTABLE = /^[\x20-\x7e]{1,128}$/;
const type = enumField(INPUT_TYPES, 'what the device is: keyboard, tablet (absolute pointer), touch, multitouch, buttons');
const width = intField(1, 65536, 'width of the screen the absolute axes span (0 to width - 1)');
const height = intField(1, 65536, 'height of the screen the absolute axes span');
const slots = intField(1, 32, 'fingers a multitouch screen tracks (ABS_MT_SLOT)');
const keys = z.array(z.string({ error: 'expected key names (KEY_VOLUMEUP) or codes' })).meta({ description: 'keys of a buttons device (or a keyboard limited to them): names such as KEY_VOLUMEUP, or codes; repeatable, or comma-separated' });
const script = z
  .array(z.string({ error: 'expected input steps (strings)' }))
  .meta({ description: "input steps run once the guest's driver is ready, e.g. 'wait 1000', 'touch 120,300', 'key KEY_ENTER', 'repeat' (see devices/input/steps.ts)" });
const productName = stringField(PRINTABLE, 'expected 1-128 printable ASCII characters', 'the name the guest sees (ID_NAME); default AVP Virtio <Type>');
const serial = stringField(PRINTABLE, 'expected 1-128 printable ASCII characters', 'the serial the guest sees (ID_SERIAL)');

const options = z.object({
  type: type.default('keyboard'),
  width: width.default(1280),
  height: height.default(720),
  slots: slots.default(10),
  keys: keys.optional(),
  script: script.optional(),
  productName: productName.optional(),
  serial: serial.optional(),
  maxPendingEvents: intField(16, 65536, 'events kept while the guest has no buffers; whole frames past it are dropped').default(1024),
  controlSocket: pathField('Unix socket taking input steps, one per line (JSON replies)').optional(),
});

type Options = z.output<typeof options>;

/** Key names or codes → codes. @throws InputConfigError naming the first unknown one. */
function keyCodes(names: readonly string[] | undefined): number[] | undefined {
  if (names === undefined) return undefined;
  return names.map((n) => {
    const code = /^\d+$/.test(n) ? Number(n) : KEY_CODES.get(n.toUpperCase());
    if (code === undefined || code < 1 || code > 0x2ff) throw new InputConfigError(`--keys: unknown key '${n}' (expected a name such as KEY_VOLUMEUP or a code from 1 to 767)`);
    return code;
  });
}

function profileOf(o: Pick<Options, 'type' | 'width' | 'height' | 'slots' | 'keys' | 'productName' | 'serial'>): InputProfile {
  const k = keyCodes(o.keys);
  if (o.type === 'buttons' && (k === undefined || k.length === 0)) throw new InputConfigError('--keys: a buttons device needs at least one key');
  return makeProfile({ type: o.type, width: o.width, height: o.height, slots: o.slots, ...(k === undefined ? {} : { keys: k }), ...(o.productName === undefined ? {} : { name: o.productName }), ...(o.serial === undefined ? {} : { serial: o.serial }) });
}

export const inputKind = defineKind({
  name: 'input',
  virtioId: INPUT_DEVICE_ID,
  vhostUserType: 'input',
  description: 'virtio-input (VIRTIO 1.3 §5.8): a keyboard, pointer, touch screen or buttons the host drives with input steps',
  capabilities: ['type', 'script', 'control-socket'],
  options,
  create: (o, host) =>
    new InputDevice({
      profile: profileOf(o),
      maxPendingEvents: o.maxPendingEvents,
      ...(o.script === undefined ? {} : { script: o.script }),
      ...(o.controlSocket === undefined ? {} : { controlSocket: o.controlSocket }),
      ...(host.unixStreams === undefined ? {} : { streams: host.unixStreams }),
    }),
  conformance: inputConformance,
  conformanceSetups: [
    { label: 'keyboard', options: { type: 'keyboard', script: ['key KEY_A'] }, expected: 'conformance.keyboard.expected.txt' },
    { label: 'multitouch', options: { type: 'multitouch', width: 800, height: 480, script: ['touch 100,200'] }, expected: 'conformance.multitouch.expected.txt' },
  ],
  frontend: {
    qemuDevice: 'vhost-user-input-pci',
    reconnect: false,
    // QEMU 7.2's vhost-user-input-pci needs KVM (device-wave-2.md §1.1); 8.0 dropped that check.
    minQemu: '10.0',
  },
  guestModules: ['evdev', 'virtio_input'],
  manifest: {
    fields: {
      type: type.optional(),
      width: width.optional(),
      height: height.optional(),
      slots: slots.optional(),
      keys: keys.optional(),
      script: script.optional(),
      productName: productName.optional(),
      serial: serial.optional(),
    },
    check(e, add) {
      let profile: InputProfile;
      try {
        profile = profileOf({ ...options.parse({}), ...Object.fromEntries(Object.entries(e).filter(([k, v]) => v !== undefined && ['type', 'width', 'height', 'slots', 'keys', 'productName', 'serial'].includes(k))) });
      } catch (err: unknown) {
        if (err instanceof InputConfigError) add(['keys'], err.message.replace(/^--keys: /, ''));
        return;
      }
      if (!Array.isArray(e['script'])) return;
      try {
        checkScript(profile, e['script'] as string[]);
      } catch (err: unknown) {
        if (err instanceof InputStepError) add(['script'], err.message);
        else throw err;
      }
    },
    plan: (e, ctx) => {
      const control = `${ctx.vmDir}/${ctx.name}.ctl`;
      const keysOf = ['type', 'width', 'height', 'slots', 'keys', 'script', 'productName', 'serial'];
      return { options: { ...Object.fromEntries(keysOf.filter((k) => e[k] !== undefined).map((k) => [k, e[k]])), controlSocket: control }, hostSockets: [control] };
    },
  },
  hostView: (o) =>
    o.controlSocket === undefined
      ? undefined
      : {
          controlSocket: o.controlSocket,
          ...(o.type === 'touch' || o.type === 'multitouch' || o.type === 'tablet' ? { pointer: { width: o.width, height: o.height } } : {}),
          keys: o.type === 'keyboard' || o.type === 'buttons',
        },
  summarize: (m) => `${String(m['type'] ?? '?')}: ${metric(m, ['eventsSent'])} events, ${metric(m, ['statusEvents'])} status`,
});
