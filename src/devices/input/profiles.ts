// SPDX-License-Identifier: Apache-2.0
/**
 * What each kind of virtio-input device reports about itself (VIRTIO 1.3 §5.8.4), and the
 * config space the driver reads it through: name, serial, device ids, property bits, event bits
 * per event type, and absolute-axis info, selected by `select`/`subsel`.
 *
 * Types: `keyboard` (every key up to KEY_MICMUTE, autorepeat, the three lock LEDs), `tablet` (an
 * absolute pointer with three buttons), `touch` (a single-touch screen: INPUT_PROP_DIRECT,
 * BTN_TOUCH, ABS_X/ABS_Y), `multitouch` (a touch screen with slots: ABS_MT_SLOT,
 * ABS_MT_POSITION_X/Y, ABS_MT_TRACKING_ID, plus ABS_X/ABS_Y and BTN_TOUCH for single-touch
 * readers), `buttons` (a set of keys chosen by option, e.g. steering-wheel buttons). Absolute
 * axes span the screen: 0 to width - 1 and 0 to height - 1.
 *
 * Owns: the profiles and the answer to every select/subsel pair ("The device MUST set the size
 * field to zero if it doesn't support a given select and subsel combination").
 * Does not own: config writes (model.ts keeps select/subsel), events (steps.ts).
 */
import {
  ABS_MT_POSITION_X,
  ABS_MT_POSITION_Y,
  ABS_MT_SLOT,
  ABS_MT_TRACKING_ID,
  ABS_X,
  ABS_Y,
  BTN_LEFT,
  BTN_MIDDLE,
  BTN_RIGHT,
  BTN_TOUCH,
  BUS_VIRTUAL,
  EV_ABS,
  EV_KEY,
  EV_LED,
  EV_REP,
  INPUT_CFG_U_SIZE,
  INPUT_PROP_DIRECT,
  KEYBOARD_MAX_KEY,
  LED_CAPSL,
  LED_NUML,
  LED_SCROLLL,
  VIRTIO_INPUT_CFG_ABS_INFO,
  VIRTIO_INPUT_CFG_EV_BITS,
  VIRTIO_INPUT_CFG_ID_DEVIDS,
  VIRTIO_INPUT_CFG_ID_NAME,
  VIRTIO_INPUT_CFG_ID_SERIAL,
  VIRTIO_INPUT_CFG_PROP_BITS,
} from './spec.js';

export const INPUT_TYPES = ['keyboard', 'tablet', 'touch', 'multitouch', 'buttons'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

/** `virtio_input_absinfo`. */
export interface AbsInfo {
  readonly min: number;
  readonly max: number;
  readonly fuzz: number;
  readonly flat: number;
  readonly res: number;
}

export interface InputProfile {
  readonly type: InputType;
  readonly name: string;
  readonly serial: string;
  readonly devids: { readonly bustype: number; readonly vendor: number; readonly product: number; readonly version: number };
  readonly props: ReadonlySet<number>;
  /** Event types the device sends and their codes (EV_REP: empty, "size non-zero" is the answer). */
  readonly ev: ReadonlyMap<number, ReadonlySet<number>>;
  readonly abs: ReadonlyMap<number, AbsInfo>;
}

export interface ProfileOptions {
  type: InputType;
  name?: string;
  serial?: string;
  /** Screen size the absolute axes span. */
  width: number;
  height: number;
  /** Multitouch slots (1..32). */
  slots: number;
  /** Key codes of a `buttons` device (or a keyboard limited to them). */
  keys?: readonly number[];
}

/** AVP's USB-style vendor id for its virtual input devices ("AV"). */
export const AVP_INPUT_VENDOR = 0x4156;
const PRODUCTS: Readonly<Record<InputType, number>> = { keyboard: 1, tablet: 2, touch: 3, multitouch: 4, buttons: 5 };
const NAMES: Readonly<Record<InputType, string>> = {
  keyboard: 'AVP Virtio Keyboard',
  tablet: 'AVP Virtio Tablet',
  touch: 'AVP Virtio Touchscreen',
  multitouch: 'AVP Virtio Multitouch',
  buttons: 'AVP Virtio Buttons',
};

const axis = (max: number): AbsInfo => ({ min: 0, max, fuzz: 0, flat: 0, res: 0 });
const range = (from: number, to: number): Set<number> => new Set(Array.from({ length: to - from + 1 }, (_, i) => from + i));

export function makeProfile(o: ProfileOptions): InputProfile {
  const ev = new Map<number, Set<number>>();
  const abs = new Map<number, AbsInfo>();
  const props = new Set<number>();
  const screen = () => {
    abs.set(ABS_X, axis(o.width - 1));
    abs.set(ABS_Y, axis(o.height - 1));
  };
  switch (o.type) {
    case 'keyboard':
      ev.set(EV_KEY, o.keys === undefined ? range(1, KEYBOARD_MAX_KEY) : new Set(o.keys));
      ev.set(EV_REP, new Set());
      ev.set(EV_LED, new Set([LED_NUML, LED_CAPSL, LED_SCROLLL]));
      break;
    case 'buttons':
      ev.set(EV_KEY, new Set(o.keys ?? []));
      break;
    case 'tablet':
      ev.set(EV_KEY, new Set([BTN_LEFT, BTN_RIGHT, BTN_MIDDLE]));
      screen();
      break;
    case 'touch':
      props.add(INPUT_PROP_DIRECT);
      ev.set(EV_KEY, new Set([BTN_TOUCH]));
      screen();
      break;
    case 'multitouch':
      props.add(INPUT_PROP_DIRECT);
      ev.set(EV_KEY, new Set([BTN_TOUCH]));
      screen();
      abs.set(ABS_MT_SLOT, axis(o.slots - 1));
      abs.set(ABS_MT_POSITION_X, axis(o.width - 1));
      abs.set(ABS_MT_POSITION_Y, axis(o.height - 1));
      abs.set(ABS_MT_TRACKING_ID, axis(0xffff));
      break;
  }
  if (abs.size > 0) ev.set(EV_ABS, new Set(abs.keys()));
  return {
    type: o.type,
    name: o.name ?? NAMES[o.type],
    serial: o.serial ?? `AVP-${o.type}`,
    devids: { bustype: BUS_VIRTUAL, vendor: AVP_INPUT_VENDOR, product: PRODUCTS[o.type], version: 1 },
    props,
    ev,
    abs,
  };
}

/** A bitmap of `bits` in the fewest bytes that hold the highest one (0 bytes when empty). */
function bitmap(bits: ReadonlySet<number>): Uint8Array {
  const max = Math.max(-1, ...bits);
  const out = new Uint8Array(max < 0 ? 0 : (max >> 3) + 1);
  for (const b of bits) out[b >> 3] = (out[b >> 3] ?? 0) | (1 << (b & 7));
  return out;
}

/**
 * The `u` bytes for a select/subsel pair (at most 128; `size` is their length): empty when the
 * pair is not supported.
 */
export function configItem(p: InputProfile, select: number, subsel: number): Uint8Array {
  switch (select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
      return subsel === 0 ? new TextEncoder().encode(p.name).subarray(0, INPUT_CFG_U_SIZE) : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_ID_SERIAL:
      return subsel === 0 ? new TextEncoder().encode(p.serial).subarray(0, INPUT_CFG_U_SIZE) : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_ID_DEVIDS: {
      if (subsel !== 0) return new Uint8Array(0);
      const b = new Uint8Array(8);
      const v = new DataView(b.buffer);
      v.setUint16(0, p.devids.bustype, true);
      v.setUint16(2, p.devids.vendor, true);
      v.setUint16(4, p.devids.product, true);
      v.setUint16(6, p.devids.version, true);
      return b;
    }
    case VIRTIO_INPUT_CFG_PROP_BITS:
      return subsel === 0 ? bitmap(p.props) : new Uint8Array(0);
    case VIRTIO_INPUT_CFG_EV_BITS: {
      const codes = p.ev.get(subsel);
      if (codes === undefined) return new Uint8Array(0);
      // EV_REP: "non-zero size" means autorepeat; the bitmap itself is empty (as QEMU answers).
      return subsel === EV_REP ? new Uint8Array(1) : bitmap(codes);
    }
    case VIRTIO_INPUT_CFG_ABS_INFO: {
      const a = p.abs.get(subsel);
      if (a === undefined) return new Uint8Array(0);
      const b = new Uint8Array(20);
      const v = new DataView(b.buffer);
      [a.min, a.max, a.fuzz, a.flat, a.res].forEach((n, i) => v.setUint32(4 * i, n >>> 0, true));
      return b;
    }
    default:
      return new Uint8Array(0);
  }
}
