// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-input constants and wire layouts, VIRTIO 1.3 §5.8 "Input Device", and the evdev codes
 * it carries (Linux include/uapi/linux/input-event-codes.h, the values the spec refers to).
 *
 * Device ID 18; queues eventq 0 (device → driver), statusq 1 (driver → device); no feature bits.
 * Config (136 bytes): `select u8 @0, subsel u8 @1, size u8 @2, reserved[5], u[128] @8`, where `u`
 * is a string, a bitmap, `virtio_input_absinfo { min, max, fuzz, flat, res: u32 }` or
 * `virtio_input_devids { bustype, vendor, product, version: u16 }`. An event is
 * `virtio_input_event { type u16, code u16, value u32 }` (8 bytes).
 * Does not own: any behaviour.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const INPUT_DEVICE_ID = VIRTIO_ID.INPUT;
export const VIRTIO_INPUT_EVENTQ = 0;
export const VIRTIO_INPUT_STATUSQ = 1;
/** Largest queue accepted (QEMU 10 asks for 64 each; Linux posts up to 64 event buffers). */
export const INPUT_QUEUE_MAX_SIZE = 1024;

/* Config (§5.8.4). */
export const VIRTIO_INPUT_CONFIG_SIZE = 136;
export const INPUT_CFG_SELECT = 0;
export const INPUT_CFG_SUBSEL = 1;
export const INPUT_CFG_SIZE = 2;
export const INPUT_CFG_U = 8;
export const INPUT_CFG_U_SIZE = 128;

/* enum virtio_input_config_select. */
export const VIRTIO_INPUT_CFG_UNSET = 0x00;
export const VIRTIO_INPUT_CFG_ID_NAME = 0x01;
export const VIRTIO_INPUT_CFG_ID_SERIAL = 0x02;
export const VIRTIO_INPUT_CFG_ID_DEVIDS = 0x03;
export const VIRTIO_INPUT_CFG_PROP_BITS = 0x10;
export const VIRTIO_INPUT_CFG_EV_BITS = 0x11;
export const VIRTIO_INPUT_CFG_ABS_INFO = 0x12;

/** `virtio_input_event`: type u16, code u16, value u32 (an s32 for evdev). */
export const VIRTIO_INPUT_EVENT_SIZE = 8;

/* Event types. */
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const EV_MSC = 0x04;
export const EV_SW = 0x05;
export const EV_LED = 0x11;
export const EV_SND = 0x12;
export const EV_REP = 0x14;
export const SYN_REPORT = 0;

export const EV_NAMES: Readonly<Record<string, number>> = { EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_SW, EV_LED, EV_SND, EV_REP };

/* Properties. */
export const INPUT_PROP_POINTER = 0x00;
export const INPUT_PROP_DIRECT = 0x01;

/* Absolute axes. */
export const ABS_X = 0x00;
export const ABS_Y = 0x01;
export const ABS_MT_SLOT = 0x2f;
export const ABS_MT_POSITION_X = 0x35;
export const ABS_MT_POSITION_Y = 0x36;
export const ABS_MT_TRACKING_ID = 0x39;
export const ABS_NAMES: Readonly<Record<string, number>> = { ABS_X, ABS_Y, ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID };

/* Relative axes. */
export const REL_X = 0x00;
export const REL_Y = 0x01;
export const REL_WHEEL = 0x08;

/* LEDs. */
export const LED_NUML = 0x00;
export const LED_CAPSL = 0x01;
export const LED_SCROLLL = 0x02;
export const LED_NAMES: Readonly<Record<number, string>> = { [LED_NUML]: 'numlock', [LED_CAPSL]: 'capslock', [LED_SCROLLL]: 'scrolllock' };

/* Buttons. */
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;
export const BTN_TOOL_FINGER = 0x145;
export const BTN_TOUCH = 0x14a;

/** `BUS_VIRTUAL` (linux/input.h). */
export const BUS_VIRTUAL = 0x06;

/** Highest key code the keyboard profile reports (KEY_MICMUTE 248 and below). */
export const KEYBOARD_MAX_KEY = 248;

/**
 * Key and button codes by name (input-event-codes.h): the keyboard's main block, navigation,
 * keypad, function keys, media keys, and the buttons. Codes can also be given as numbers.
 */
export const KEY_CODES: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  const seq = (names: string, first: number) => names.split(' ').forEach((n, i) => m.set(`KEY_${n}`, first + i));
  seq('ESC 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL BACKSPACE TAB Q W E R T Y U I O P LEFTBRACE RIGHTBRACE ENTER LEFTCTRL A S D F G H J K L SEMICOLON APOSTROPHE GRAVE LEFTSHIFT BACKSLASH Z X C V B N M COMMA DOT SLASH RIGHTSHIFT KPASTERISK LEFTALT SPACE CAPSLOCK F1 F2 F3 F4 F5 F6 F7 F8 F9 F10 NUMLOCK SCROLLLOCK KP7 KP8 KP9 KPMINUS KP4 KP5 KP6 KPPLUS KP1 KP2 KP3 KP0 KPDOT', 1);
  seq('F11 F12', 87);
  seq('KPENTER RIGHTCTRL KPSLASH SYSRQ RIGHTALT LINEFEED HOME UP PAGEUP LEFT RIGHT END DOWN PAGEDOWN INSERT DELETE MACRO MUTE VOLUMEDOWN VOLUMEUP POWER KPEQUAL KPPLUSMINUS PAUSE', 96);
  seq('LEFTMETA RIGHTMETA COMPOSE', 125);
  m.set('KEY_MENU', 139);
  m.set('KEY_BACK', 158);
  m.set('KEY_FORWARD', 159);
  seq('NEXTSONG PLAYPAUSE PREVIOUSSONG STOPCD', 163);
  m.set('KEY_HOMEPAGE', 172);
  m.set('KEY_PHONE', 169);
  m.set('KEY_MICMUTE', 248);
  for (const [n, c] of Object.entries({ BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_TOOL_FINGER, BTN_TOUCH })) m.set(n, c);
  return m;
})();

/** Characters `type` can send: [key, with shift]. */
export const CHAR_KEYS: ReadonlyMap<string, readonly [string, boolean]> = (() => {
  const m = new Map<string, readonly [string, boolean]>();
  for (const c of 'abcdefghijklmnopqrstuvwxyz') {
    m.set(c, [`KEY_${c.toUpperCase()}`, false]);
    m.set(c.toUpperCase(), [`KEY_${c.toUpperCase()}`, true]);
  }
  for (const c of '0123456789') m.set(c, [`KEY_${c}`, false]);
  const plain: Record<string, string> = { ' ': 'SPACE', '-': 'MINUS', '=': 'EQUAL', '.': 'DOT', ',': 'COMMA', '/': 'SLASH', ';': 'SEMICOLON', "'": 'APOSTROPHE' };
  for (const [c, k] of Object.entries(plain)) m.set(c, [`KEY_${k}`, false]);
  return m;
})();
