// SPDX-License-Identifier: Apache-2.0
/** virtio-i2c through the in-process harness (VIRTIO 1.3 §5.21), with the simulated chips. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceHarness } from '../../device/harness.js';
import { ManualReactor } from '../../device/manual-reactor.js';
import { createDevice } from '../registry.js';
import { At24Eeprom, Lm75Sensor, lm75Decode, lm75Encode } from './clients.js';
import { I2cDevice } from './model.js';
import { MemoryEepromStore } from './testing.js';

// From the spec (not from spec.ts): FAIL_NEXT bit 0, M_RD bit 1; OK 0, ERR 1.
const FAIL_NEXT = 1;
const M_RD = 2;
const OK = 0;
const ERR = 1;
const VERSION_1 = 1n << 32n;

class Bus {
  readonly h: DeviceHarness<I2cDevice>;
  constructor(dev: I2cDevice, opts: ConstructorParameters<typeof DeviceHarness>[1] = {}) {
    this.h = new DeviceHarness(dev, opts);
  }

  #hdr(addr7: number, flags: number, raw?: number): number {
    const a = this.h.alloc.alloc(8);
    const v = new DataView(new ArrayBuffer(8));
    v.setUint16(0, raw ?? addr7 << 1, true);
    v.setUint32(4, flags, true);
    this.h.memory.write(a, new Uint8Array(v.buffer));
    return a;
  }

  /** Queues a write segment; returns where its status lands. */
  submitWrite(addr: number, bytes: number[], flags = 0): { status: number; head: number } {
    const hdr = this.#hdr(addr, flags);
    const buf = this.h.alloc.alloc(Math.max(bytes.length, 1));
    this.h.memory.write(buf, Uint8Array.from(bytes));
    const status = this.h.alloc.alloc(1);
    this.h.memory.fill(status, 1, 0xee);
    const head = this.h.submit(0, [{ addr: hdr, len: 8 }, ...(bytes.length > 0 ? [{ addr: buf, len: bytes.length }] : []), { addr: status, len: 1, writable: true }]);
    return { status, head };
  }

  submitRead(addr: number, n: number, flags = 0, raw?: number): { status: number; data: number; head: number } {
    const hdr = this.#hdr(addr, flags | M_RD, raw);
    const data = this.h.alloc.alloc(Math.max(n, 1));
    this.h.memory.fill(data, n, 0xee);
    const status = this.h.alloc.alloc(1);
    this.h.memory.fill(status, 1, 0xee);
    const head = this.h.submit(0, [{ addr: hdr, len: 8 }, ...(n > 0 ? [{ addr: data, len: n, writable: true }] : []), { addr: status, len: 1, writable: true }]);
    return { status, data, head };
  }

  byte(addr: number): number {
    return this.h.memory.read(addr, 1)[0] ?? -1;
  }

  write(addr: number, bytes: number[], flags = 0): number {
    const s = this.submitWrite(addr, bytes, flags);
    this.drain();
    return this.byte(s.status);
  }

  read(addr: number, n: number, flags = 0): { status: number; bytes: number[] } {
    const s = this.submitRead(addr, n, flags);
    this.drain();
    return { status: this.byte(s.status), bytes: [...this.h.memory.read(s.data, n)] };
  }

  /** SMBus read word with a register pointer: write [reg] + read 2, one group. */
  readReg(addr: number, reg: number, n = 2): { status: number; bytes: number[] } {
    this.submitWrite(addr, [reg], FAIL_NEXT);
    const r = this.submitRead(addr, n);
    this.drain();
    return { status: this.byte(r.status), bytes: [...this.h.memory.read(r.data, n)] };
  }

  used: Array<{ head: number; len: number }> = [];
  drain(): void {
    for (let u = this.h.queue(0).popUsed(); u !== null; u = this.h.queue(0).popUsed()) this.used.push({ head: u.head, len: u.len });
  }
}

function bus(temperature = () => 87.5): { b: Bus; store: MemoryEepromStore } {
  const store = new MemoryEepromStore();
  const dev = new I2cDevice({ clients: new Map<number, Lm75Sensor | At24Eeprom>([[0x48, new Lm75Sensor(temperature)], [0x50, new At24Eeprom(store)]]) });
  return { b: new Bus(dev), store };
}

test('lm75: 9-bit two\'s complement in 0.5 °C steps, clamped to -55..125', () => {
  assert.equal(lm75Encode(25), 0x1900);
  assert.equal(lm75Encode(87.5), 0x5780);
  assert.equal(lm75Encode(-0.5), 0xff80);
  assert.equal(lm75Encode(-25), 0xe700);
  assert.equal(lm75Encode(200), lm75Encode(125));
  assert.equal(lm75Encode(-80), lm75Encode(-55));
  assert.equal(lm75Encode(25.3), 0x1980, 'rounded to the nearest half degree');
  for (const c of [-55, -0.5, 0, 24.5, 125]) assert.equal(lm75Decode(lm75Encode(c)), c);
});

test('i2c: an LM75 at 0x48 answers the lm75 driver\'s register reads and writes', () => {
  let t = 87.5;
  const { b } = bus(() => t);
  assert.deepEqual(b.readReg(0x48, 0), { status: OK, bytes: [0x57, 0x80] }, 'TEMP');
  t = -25;
  assert.deepEqual(b.readReg(0x48, 0).bytes, [0xe7, 0x00], 'a read samples the source again');
  assert.deepEqual(b.readReg(0x48, 1, 1), { status: OK, bytes: [0] }, 'CONF');
  assert.deepEqual(b.readReg(0x48, 2).bytes, [0x4b, 0x00], 'THYST 75');
  assert.deepEqual(b.readReg(0x48, 3).bytes, [0x50, 0x00], 'TOS 80');
  assert.equal(b.write(0x48, [3, 0x5a, 0xff]), OK);
  assert.deepEqual(b.readReg(0x48, 3).bytes, [0x5a, 0x80], 'bits 6-0 are not kept');
  assert.equal(b.write(0x48, [1, 0x01]), OK);
  assert.deepEqual(b.readReg(0x48, 1, 2).bytes, [1, 1], 'an 8-bit register repeats');
  assert.equal(b.write(0x48, [0, 0x12, 0x34]), OK, 'TEMP is read-only but the write is acknowledged');
  assert.deepEqual(b.read(0x48, 2).bytes, [0xe7, 0x00], 'a read without a pointer write uses the last pointer');
});

test('i2c: a 24c02 at 0x50: random and sequential reads, page writes that wrap inside the page, saved', () => {
  const { b, store } = bus();
  assert.deepEqual(b.readReg(0x50, 0, 4).bytes, [0xff, 0xff, 0xff, 0xff], 'erased');
  assert.equal(b.write(0x50, [0x10, 1, 2, 3]), OK);
  assert.deepEqual(b.readReg(0x50, 0x10, 3).bytes, [1, 2, 3]);
  assert.deepEqual(b.read(0x50, 2).bytes, [0xff, 0xff], 'the address counter continues');
  // 10 bytes from 0x1e: page 0x18-0x1f; the counter wraps in the page (0x1e, 0x1f, 0x18, ...),
  // so the first two bytes are overwritten by the last two.
  assert.equal(b.write(0x50, [0x1e, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]), OK);
  assert.deepEqual(b.readReg(0x50, 0x18, 8).bytes, [12, 13, 14, 15, 16, 17, 18, 19]);
  assert.deepEqual(b.readReg(0x50, 0x20, 1).bytes, [0xff], 'the next page is untouched');
  assert.deepEqual(b.readReg(0x50, 0xff, 2).bytes, [0xff, 0xff], 'a read wraps at the end of the array');
  assert.equal(store.data[0x11], 2, 'written through to the store');
  assert.ok(store.saves >= 2);
});

test('i2c: unknown addresses NACK writes, reads and quick probes; zero-length transfers ACK on devices', () => {
  const { b } = bus();
  assert.equal(b.write(0x49, []), ERR);
  assert.equal(b.write(0x48, []), OK);
  assert.equal(b.read(0x50, 0).status, OK, 'a zero-length read');
  const r = b.read(0x20, 4);
  assert.deepEqual(r, { status: ERR, bytes: [0, 0, 0, 0] }, 'a failed read is zero-filled');
  assert.equal(b.h.device.metrics().nacks, 2);
  assert.deepEqual(b.h.device.metrics().devices, { '0x48': 'lm75', '0x50': '24c02' });
});

test('i2c: FAIL_NEXT fails the rest of a group without running it; the next group runs', () => {
  const { b, store } = bus();
  const first = b.submitWrite(0x20, [0], FAIL_NEXT);
  const second = b.submitWrite(0x50, [0x40, 0x99], FAIL_NEXT);
  const third = b.submitRead(0x50, 1);
  const next = b.submitRead(0x48, 2);
  b.drain();
  assert.deepEqual([first, second, third, next].map((s) => b.byte(s.status)), [ERR, ERR, ERR, OK]);
  assert.equal(store.data[0x40], 0xff, 'the skipped write did not reach the EEPROM');
  assert.equal(b.h.device.metrics().skipped, 2);
  assert.deepEqual(b.used.map((u) => u.head), [first.head, second.head, third.head, next.head], 'completed in ring order');
});

test('i2c: refused: reserved flags, M_RD against the buffer direction, 10-bit and odd addresses, over-long segments', () => {
  const { b } = bus();
  assert.equal(b.write(0x48, [], 0x4), ERR, 'reserved flag bit 2');
  // M_RD with a device-readable buffer.
  const mrd = b.submitWrite(0x48, [0], M_RD);
  b.drain();
  assert.equal(b.byte(mrd.status), ERR);
  const ten = b.submitRead(0, 1, 0, (0x48 << 8) | 0xf0);
  const odd = b.submitRead(0, 1, 0, (0x48 << 1) | 1);
  b.drain();
  assert.deepEqual([b.byte(ten.status), b.byte(odd.status)], [ERR, ERR]);
  const big = new Bus(new I2cDevice({ clients: new Map([[0x48, new Lm75Sensor(() => 20)]]), maxTransfer: 4 }));
  assert.equal(big.read(0x48, 5).status, ERR);
  assert.equal(big.read(0x48, 4).status, OK);
  assert.equal(b.h.device.metrics().refused, 2, 'flags and direction; 10-bit and odd addresses are NACKs');
  assert.equal(b.h.device.metrics().nacks, 2);
});

test('i2c: chains without a header or a status byte get used length 0; the device goes on', () => {
  const { b } = bus();
  const hdr = b.h.alloc.alloc(8);
  assert.equal(b.h.request(0, [{ addr: hdr, len: 8 }]).len, 0);
  assert.equal(b.h.request(0, [{ addr: hdr, len: 4 }, { addr: b.h.alloc.alloc(1), len: 1, writable: true }]).len, 0);
  assert.equal(b.readReg(0x48, 0).status, OK);
  assert.equal(b.h.device.metrics().malformed, 2);
});

test('i2c: a driver without ZERO_LENGTH_REQUEST is refused (FEATURES_OK not latched)', () => {
  const { b } = bus();
  assert.throws(() => new DeviceHarness(b.h.device, { features: VERSION_1 }), /refused features/);
});

test('i2c: the kind builds a bus whose sensor follows the trace from the first activation, with the default before', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-i2c-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 't.csv'), 'time,signal,value\n1,coolant,90\n3,coolant,-12.5\n');
  const dev = createDevice({ kind: 'i2c', options: { sensor: ['0x48=coolant', '0x49'], eeprom: [`0x50=${join(dir, 'e.bin')}`], trace: join(dir, 't.csv'), temperature: 21 } }) as I2cDevice;
  assert.equal(readFileSync(join(dir, 'e.bin')).length, 256, 'the EEPROM file was created');
  const reactor = new ManualReactor();
  reactor.advance(5000);
  const b = new Bus(dev, { reactor });
  const temp = (a: number) => lm75Decode(((b.readReg(a, 0).bytes[0] ?? 0) << 8) | (b.readReg(a, 0).bytes[1] ?? 0));
  assert.equal(temp(0x48), 21, 'before the first row');
  reactor.advance(1000);
  assert.equal(temp(0x48), 90);
  reactor.advance(2500);
  assert.equal(temp(0x48), -12.5);
  assert.equal(temp(0x49), 21, "a sensor whose signal the trace lacks reads the default");
  assert.equal(b.write(0x50, [5, 0x42]), OK);
  assert.equal(readFileSync(join(dir, 'e.bin'))[5], 0x42, 'the guest\'s byte is in the file');
});

test('i2c kind: addresses are checked and unique; EEPROM files of the wrong size are refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'avp-i2c-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const make = (options: Record<string, unknown>) => () => createDevice({ kind: 'i2c', options });
  assert.throws(make({ sensor: ['0x78'] }), { message: /--sensor: expected a 7-bit address from 0x03 to 0x77/ });
  assert.throws(make({ sensor: ['x'] }), { message: /--sensor: expected a 7-bit address/ });
  assert.throws(make({ sensor: ['0x48'], eeprom: [`0x48=${join(dir, 'a')}`] }), { message: /address 0x48 is taken by the lm75/ });
  assert.throws(make({ eeprom: ['0x50'] }), { message: /--eeprom: expected ADDR=FILE/ });
  writeFileSync(join(dir, 'small.bin'), Buffer.alloc(100));
  assert.throws(make({ eeprom: [`0x50=${join(dir, 'small.bin')}`] }), { code: 'I2C_EEPROM_FILE', message: /100 bytes, expected 256/ });
  assert.throws(make({ temperature: 300 }), { message: /temperature: expected a temperature from -55 to 125/ });
});
