// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpio's part of the conformance suite (VIRTIO 1.3 §5.17; AVPS GPIO), written against the
 * transport-agnostic `ConformanceDriver` (device/conformance.ts).
 *
 * Owns: the probe (GET_DIRECTION of line 0), the wrong-direction request (a request with no
 * device-readable part), and the gpio checks: the config and the names block, directions,
 * output read-back and SET_VALUE before output, refusals of bad requests (ERR, never a write past
 * the response), and the interrupt protocol as far as a driver alone can drive it: buffers for
 * lines whose interrupt is not enabled come back INVALID, a level interrupt whose level is active
 * fires as soon as its buffer arrives, disabling returns the held buffer INVALID, a second buffer
 * for a line comes back INVALID, and SET_IRQ_TYPE is refused on outputs, for unknown types and
 * without VIRTIO_GPIO_F_IRQ. Edges need the host to move a line (control socket, trace): the
 * real-guest e2e test covers them.
 * Does not own: running checks or any transport.
 */
import { fail, pass, reject, skip, type CheckOutcome, type ConformanceDriver, type DeviceCheck, type DeviceConformance } from '../../device/conformance.js';
import { DEFAULT_DRIVER_FEATURES } from '../../device/conformance.js';
import { featureBit, hasFeature } from '../../spec/virtio.js';
import {
  GPIO_CONFIG_SIZE,
  GPIO_DEVICE_ID,
  GPIO_EVENTQ,
  GPIO_REQUESTQ,
  VIRTIO_GPIO_DIRECTION_IN,
  VIRTIO_GPIO_DIRECTION_NONE,
  VIRTIO_GPIO_DIRECTION_OUT,
  VIRTIO_GPIO_F_IRQ,
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_IRQ_STATUS_VALID,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
  VIRTIO_GPIO_IRQ_TYPE_NONE,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_GET_LINE_NAMES,
  VIRTIO_GPIO_MSG_GET_VALUE,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
  VIRTIO_GPIO_STATUS_ERR,
  VIRTIO_GPIO_STATUS_OK,
} from './spec.js';

const SPEC = 'VIRTIO 1.3 §5.17.6';
const IRQ_SPEC = 'VIRTIO 1.3 §5.17.7 (eventq Operation)';
/** What response buffers are primed with, so untouched bytes show. */
const FILL = 0xee;

/** A request as the driver builds it: `le16 type, le16 gpio, le32 value`, by hand. */
function requestBytes(type: number, gpio: number, value: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, type, true);
  v.setUint16(2, gpio, true);
  v.setUint32(4, value, true);
  return b;
}

interface Answer {
  readonly status: number;
  readonly value: number;
  readonly len: number;
  readonly bytes: Uint8Array;
}

function gpioRequest(d: ConformanceDriver, type: number, gpio: number, value = 0, respLen = 2): Answer {
  const resp = d.in(respLen, FILL);
  const used = d.request([d.out(requestBytes(type, gpio, value)), resp], { queue: GPIO_REQUESTQ });
  const bytes = d.bytes(resp);
  return { status: bytes[0] ?? -1, value: bytes[1] ?? -1, len: used.len, bytes };
}

/** "status OK, value v, used length 2", or what was wrong. */
function expectOk(a: Answer, what: string, value?: number): string | null {
  if (a.status !== VIRTIO_GPIO_STATUS_OK) return `${what}: status ${a.status}, expected OK`;
  if (a.len !== 2) return `${what}: used length ${a.len}, expected 2 (Linux checks it exactly)`;
  if (value !== undefined && a.value !== value) return `${what}: value ${a.value}, expected ${value}`;
  return null;
}

function readConfig(d: ConformanceDriver): { ngpio: number; namesSize: number; padding: number } | string {
  const cfg = d.readConfig(0, GPIO_CONFIG_SIZE);
  if (cfg === null || cfg.length !== GPIO_CONFIG_SIZE) return 'the 8-byte config could not be read';
  const v = new DataView(cfg.buffer, cfg.byteOffset);
  return { ngpio: v.getUint16(0, true), padding: v.getUint16(2, true), namesSize: v.getUint32(4, true) };
}

/** The first line whose direction is `dir` (GET_DIRECTION), or undefined. */
function findLine(d: ConformanceDriver, ngpio: number, dir: number): number | undefined {
  for (let g = 0; g < Math.min(ngpio, 64); g++) if (gpioRequest(d, VIRTIO_GPIO_MSG_GET_DIRECTION, g).value === dir) return g;
  return undefined;
}

/** An eventq buffer pair for line `gpio`: `le16 gpio` then `u8 status`. */
function irqBuffers(d: ConformanceDriver, gpio: number) {
  const req = new Uint8Array(2);
  new DataView(req.buffer).setUint16(0, gpio, true);
  const status = d.in(1, FILL);
  return { buffers: [d.out(req), status], status };
}

/** Starts with interrupts, or explains why the check does not apply. */
function startIrq(d: ConformanceDriver): { ngpio: number } | CheckOutcome {
  if (!hasFeature(d.offeredFeatures, VIRTIO_GPIO_F_IRQ)) return skip('the device does not offer VIRTIO_GPIO_F_IRQ');
  d.start();
  const cfg = readConfig(d);
  if (typeof cfg === 'string') return fail(cfg);
  return { ngpio: cfg.ngpio };
}

/** Posts an eventq pair for a line that does not exist and waits for it: everything queued before it on the eventq has been seen. */
function eventqRoundTrip(d: ConformanceDriver, ngpio: number): void {
  d.request(irqBuffers(d, ngpio).buffers, { queue: GPIO_EVENTQ });
}

const checks: DeviceCheck[] = [
  {
    id: 'gpio.config',
    title: 'ngpio is at least 1, padding is zero, and the names block has one unique NUL-terminated name per line',
    source: `VIRTIO 1.3 §5.17.4; ${SPEC}.1 (Get Line Names: "the name string must be zero-terminated and the name must be unique")`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      d.start();
      const cfg = readConfig(d);
      if (typeof cfg === 'string') return fail(cfg);
      if (cfg.ngpio === 0) return fail('ngpio is 0');
      if (cfg.padding !== 0) return fail(`padding is 0x${cfg.padding.toString(16)}, expected 0`);
      if (cfg.namesSize === 0) return pass(`${cfg.ngpio} lines, no names`);
      const a = gpioRequest(d, VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 1 + cfg.namesSize);
      if (a.status !== VIRTIO_GPIO_STATUS_OK) return fail(`GET_LINE_NAMES: status ${a.status}`);
      if (a.len !== 1 + cfg.namesSize) return fail(`GET_LINE_NAMES: used length ${a.len}, expected 1 + gpio_names_size = ${1 + cfg.namesSize}`);
      const block = a.bytes.subarray(1);
      if (block[block.length - 1] !== 0) return fail('the names block does not end with a NUL');
      const names = new TextDecoder('latin1').decode(block.subarray(0, block.length - 1)).split('\0');
      if (names.length !== cfg.ngpio) return fail(`the names block has ${names.length} names for ${cfg.ngpio} lines`);
      const named = names.filter((n) => n !== '');
      if (new Set(named).size !== named.length) return fail(`names repeat: ${named.join(', ')}`);
      if (named.some((n) => /[^\x20-\x7e]/.test(n))) return fail('a name is not printable 7-bit ASCII');
      return pass(`${cfg.ngpio} lines: ${names.map((n) => n || '""').join(', ')}`);
    },
  },
  {
    id: 'gpio.directions',
    title: 'GET_DIRECTION answers every line with none, out or in (Linux asks for every line at probe)',
    source: `${SPEC}.2 (Get Direction); ${SPEC} device requirements ("MUST set all the fields of the struct virtio_gpio_response")`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      d.start();
      const cfg = readConfig(d);
      if (typeof cfg === 'string') return fail(cfg);
      const seen: number[] = [];
      for (let g = 0; g < Math.min(cfg.ngpio, 64); g++) {
        const a = gpioRequest(d, VIRTIO_GPIO_MSG_GET_DIRECTION, g);
        const bad = expectOk(a, `line ${g}`);
        if (bad !== null) return fail(bad);
        if (a.value > VIRTIO_GPIO_DIRECTION_IN) return fail(`line ${g}: direction ${a.value}`);
        seen.push(a.value);
      }
      return pass(`directions ${seen.join(',')}`);
    },
  },
  {
    id: 'gpio.output-readback',
    title: 'An output line reads back the value the driver set; NONE deactivates the line',
    source: `${SPEC}.3-5 (Set Direction, Get Value, Set Value)`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      d.start();
      const steps: Array<[number, number, number | undefined, string]> = [
        [VIRTIO_GPIO_MSG_SET_VALUE, 1, 0, 'SET_VALUE 1'],
        [VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_DIRECTION_OUT, 0, 'SET_DIRECTION out'],
        [VIRTIO_GPIO_MSG_GET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT, 'GET_DIRECTION'],
        [VIRTIO_GPIO_MSG_GET_VALUE, 0, 1, 'GET_VALUE after 1'],
        [VIRTIO_GPIO_MSG_SET_VALUE, 0, 0, 'SET_VALUE 0'],
        [VIRTIO_GPIO_MSG_GET_VALUE, 0, 0, 'GET_VALUE after 0'],
        [VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_DIRECTION_NONE, 0, 'SET_DIRECTION none'],
        [VIRTIO_GPIO_MSG_GET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_NONE, 'GET_DIRECTION after none'],
      ];
      for (const [type, value, expect, what] of steps) {
        const bad = expectOk(gpioRequest(d, type, 0, value), what, expect);
        if (bad !== null) return fail(bad);
      }
      return pass('line 0: set 1, out, read 1, set 0, read 0, none');
    },
  },
  {
    id: 'gpio.value-before-output',
    title: 'A value set before the line becomes an output is the value it drives',
    source: `${SPEC}.5 ("The line may already be configured for output or may get configured to output later, at which point this output value must be used")`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      d.start();
      for (const [type, value, expect, what] of [
        [VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_DIRECTION_IN, 0, 'SET_DIRECTION in'],
        [VIRTIO_GPIO_MSG_SET_VALUE, 1, 0, 'SET_VALUE 1 while an input'],
        [VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_DIRECTION_OUT, 0, 'SET_DIRECTION out'],
        [VIRTIO_GPIO_MSG_GET_VALUE, 0, 1, 'GET_VALUE'],
      ] as const) {
        const bad = expectOk(gpioRequest(d, type, 0, value), what, expect);
        if (bad !== null) return fail(bad);
      }
      return pass('the earlier SET_VALUE 1 is driven once the line is an output');
    },
  },
  {
    id: 'gpio.bad-requests',
    title: 'Unknown types, lines past ngpio, bad directions and values, and a too-short names buffer get ERR; nothing is written past the response',
    source: `${SPEC}.7 (Message Flow: "The status must be set to VIRTIO_GPIO_STATUS_ERR on failure"); VIRTIO 1.3 §2.7.4 (the device writes only device-writable buffers)`,
    level: 'MUST',
    group: 'hostile',
    devices: ['gpio'],
    run(d) {
      d.start();
      const cfg = readConfig(d);
      if (typeof cfg === 'string') return fail(cfg);
      const cases: Array<[string, Answer]> = [
        ['unknown type 0x99', gpioRequest(d, 0x99, 0)],
        [`line ${cfg.ngpio} (= ngpio)`, gpioRequest(d, VIRTIO_GPIO_MSG_GET_VALUE, cfg.ngpio)],
        ['line 0xffff', gpioRequest(d, VIRTIO_GPIO_MSG_SET_VALUE, 0xffff, 1)],
        ['SET_DIRECTION 7', gpioRequest(d, VIRTIO_GPIO_MSG_SET_DIRECTION, 0, 7)],
        ['SET_VALUE 2', gpioRequest(d, VIRTIO_GPIO_MSG_SET_VALUE, 0, 2)],
        ['SET_VALUE 0x100000001', gpioRequest(d, VIRTIO_GPIO_MSG_SET_VALUE, 0, 0xffff_ffff)],
      ];
      if (cfg.namesSize > 0) cases.push(['GET_LINE_NAMES with a 2-byte response', gpioRequest(d, VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 2)]);
      for (const [what, a] of cases) {
        if (a.status !== VIRTIO_GPIO_STATUS_ERR) return fail(`${what}: status ${a.status}, expected ERR`);
        if (a.len > a.bytes.length) return fail(`${what}: used length ${a.len} for a ${a.bytes.length}-byte response`);
      }
      const short = d.in(2, FILL);
      d.request([d.out(new Uint8Array(4)), short], { queue: GPIO_REQUESTQ });
      const still = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_GET_DIRECTION, 0), 'GET_DIRECTION after the bad requests');
      if (still !== null) return fail(still);
      return reject(`${cases.length} bad requests answered ERR, a 4-byte request refused; the device still answers`);
    },
  },
  {
    id: 'gpio.irq-not-enabled',
    title: 'An eventq buffer for a line whose interrupt is not enabled, or for no line, comes back INVALID at once',
    source: `${IRQ_SPEC}; ${SPEC}.6 ("or the interrupt is unmasked without being enabled first, the device should return any unused pair of buffers ... VIRTIO_GPIO_IRQ_STATUS_INVALID")`,
    level: 'SHOULD',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      const s = startIrq(d);
      if ('verdict' in s) return s;
      for (const [what, gpio] of [['line 0, interrupt not enabled', 0], [`line ${s.ngpio} (no such line)`, s.ngpio]] as const) {
        const b = irqBuffers(d, gpio);
        const used = d.request(b.buffers, { queue: GPIO_EVENTQ });
        const status = d.bytes(b.status)[0];
        if (used.len !== 1 || status !== VIRTIO_GPIO_IRQ_STATUS_INVALID) return fail(`${what}: returned with length ${used.len}, status ${status}; expected 1, INVALID`);
      }
      return pass('both returned INVALID');
    },
  },
  {
    id: 'gpio.irq-level-active',
    title: 'A level interrupt whose level is active fires (VALID) as soon as its buffer arrives',
    source: `${IRQ_SPEC} ("Once the interrupt is unmasked again and the interrupt on the line is still active, the device shall notify the driver")`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      const s = startIrq(d);
      if ('verdict' in s) return s;
      const line = findLine(d, s.ngpio, VIRTIO_GPIO_DIRECTION_IN);
      if (line === undefined) return skip('no input line');
      const level = gpioRequest(d, VIRTIO_GPIO_MSG_GET_VALUE, line).value;
      const type = level === 1 ? VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH : VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW;
      const bad = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, line, type), `SET_IRQ_TYPE level-${level === 1 ? 'high' : 'low'}`);
      if (bad !== null) return fail(bad);
      const b = irqBuffers(d, line);
      const used = d.request(b.buffers, { queue: GPIO_EVENTQ });
      const status = d.bytes(b.status)[0];
      if (used.len !== 1 || status !== VIRTIO_GPIO_IRQ_STATUS_VALID) return fail(`returned with length ${used.len}, status ${status}; expected 1, VALID`);
      const off = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, line, VIRTIO_GPIO_IRQ_TYPE_NONE), 'SET_IRQ_TYPE none');
      return off === null ? pass(`line ${line} (level ${level}): VALID at once`) : fail(off);
    },
  },
  {
    id: 'gpio.irq-disable-returns',
    title: 'Disabling an interrupt returns its held buffer INVALID; a second buffer for the same line comes back INVALID at once',
    source: `${IRQ_SPEC} device requirements ("MUST return the buffers ... VIRTIO_GPIO_IRQ_STATUS_INVALID"); driver requirements ("MUST NOT add multiple pairs of buffers for the same GPIO line")`,
    level: 'MUST',
    group: 'device',
    devices: ['gpio'],
    run(d) {
      const s = startIrq(d);
      if ('verdict' in s) return s;
      const line = findLine(d, s.ngpio, VIRTIO_GPIO_DIRECTION_IN);
      if (line === undefined) return skip('no input line');
      const on = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, line, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING), 'SET_IRQ_TYPE edge-rising');
      if (on !== null) return fail(on);
      const first = irqBuffers(d, line);
      const held = d.post(first.buffers, { queue: GPIO_EVENTQ });
      const second = irqBuffers(d, line);
      const dup = d.request(second.buffers, { queue: GPIO_EVENTQ });
      if (dup.len !== 1 || d.bytes(second.status)[0] !== VIRTIO_GPIO_IRQ_STATUS_INVALID) return fail(`the second pair came back with length ${dup.len}, status ${d.bytes(second.status)[0]}; expected 1, INVALID`);
      eventqRoundTrip(d, s.ngpio);
      if (d.usedOf(held, { queue: GPIO_EVENTQ }) !== undefined) return fail('the first pair came back although no edge happened');
      const off = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, line, VIRTIO_GPIO_IRQ_TYPE_NONE), 'SET_IRQ_TYPE none');
      if (off !== null) return fail(off);
      const used = d.usedOf(held, { queue: GPIO_EVENTQ }) ?? d.wait(held, { queue: GPIO_EVENTQ });
      const status = d.bytes(first.status)[0];
      if (used.len !== 1 || status !== VIRTIO_GPIO_IRQ_STATUS_INVALID) return fail(`after disabling, the held pair came back with length ${used.len}, status ${status}; expected 1, INVALID`);
      return pass(`line ${line}: held while enabled, duplicate refused, returned INVALID on disable`);
    },
  },
  {
    id: 'gpio.irq-refused',
    title: 'SET_IRQ_TYPE gets ERR for an unknown type and on an output line, and without VIRTIO_GPIO_F_IRQ',
    source: `${SPEC}.6 ("This request is allowed only if the VIRTIO_GPIO_F_IRQ feature has been negotiated"; "MUST NOT send IRQ messages for a GPIO line configured for output")`,
    level: 'SHOULD',
    group: 'hostile',
    devices: ['gpio'],
    run(d) {
      if (!hasFeature(d.offeredFeatures, VIRTIO_GPIO_F_IRQ)) {
        d.start();
        const a = gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, 0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        return a.status === VIRTIO_GPIO_STATUS_ERR ? reject('SET_IRQ_TYPE without VIRTIO_GPIO_F_IRQ: ERR') : fail(`SET_IRQ_TYPE without VIRTIO_GPIO_F_IRQ: status ${a.status}`);
      }
      d.start({ features: DEFAULT_DRIVER_FEATURES & ~featureBit(VIRTIO_GPIO_F_IRQ) });
      const without = gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, 0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
      if (without.status !== VIRTIO_GPIO_STATUS_ERR) return fail(`SET_IRQ_TYPE with VIRTIO_GPIO_F_IRQ not negotiated: status ${without.status}, expected ERR`);
      return reject('SET_IRQ_TYPE without VIRTIO_GPIO_F_IRQ negotiated: ERR');
    },
  },
  {
    id: 'gpio.irq-bad-type',
    title: 'SET_IRQ_TYPE gets ERR for a trigger type the spec does not define, and on an output line',
    source: `${SPEC}.6 (trigger types 0-4 and 8; "MUST NOT send IRQ messages for a GPIO line configured for output")`,
    level: 'SHOULD',
    group: 'hostile',
    devices: ['gpio'],
    run(d) {
      const s = startIrq(d);
      if ('verdict' in s) return s;
      const bad = gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, 0, 5);
      if (bad.status !== VIRTIO_GPIO_STATUS_ERR) return fail(`trigger type 5: status ${bad.status}, expected ERR`);
      const out = expectOk(gpioRequest(d, VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT), 'SET_DIRECTION out');
      if (out !== null) return fail(out);
      const onOutput = gpioRequest(d, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, 0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
      if (onOutput.status !== VIRTIO_GPIO_STATUS_ERR) return fail(`SET_IRQ_TYPE on an output line: status ${onOutput.status}, expected ERR`);
      return reject('type 5 and an output line: ERR');
    },
  },
];

export const gpioConformance: DeviceConformance = {
  device: 'gpio',
  deviceId: GPIO_DEVICE_ID,
  configSize: GPIO_CONFIG_SIZE,
  probeQueue: GPIO_REQUESTQ,
  queues: [GPIO_REQUESTQ, GPIO_EVENTQ],
  probe(d) {
    const resp = d.in(2, FILL);
    return {
      buffers: [d.out(requestBytes(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0)), resp],
      verify(used) {
        const b = d.bytes(resp);
        if (used.len !== 2) return `used length ${used.len}, expected 2`;
        if (b[0] !== VIRTIO_GPIO_STATUS_OK || (b[1] ?? 9) > VIRTIO_GPIO_DIRECTION_IN) return `status ${b[0]}, direction ${b[1]}`;
        return null;
      },
    };
  },
  wrongDirection(d) {
    // The request itself in a device-writable buffer: there is nothing to read, so nothing to do.
    const buf = d.in(10, 0x5c);
    return {
      buffers: [buf],
      judge(used) {
        if (used === null) return reject('not returned; the device kept serving');
        if (used.len > 0) return fail(`used length ${used.len} for a chain without a request`);
        return pass('returned with used length 0');
      },
    };
  },
  checks,
};
