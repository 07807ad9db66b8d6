// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-i2c as a device kind (devices/kind.ts): a virtual I2C bus with LM75-compatible
 * temperature sensors fed from a vehicle-signal trace and 24C02 EEPROMs backed by files. QEMU's
 * front-end is vhost-user-i2c-pci; the guest driver i2c-virtio is built by the image (Debian
 * leaves I2C_VIRTIO unset), and the guest binds lm75 and at24 through `new_device`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorText } from '../../errors.js';
import { defineKind } from '../kind.js';
import { intField, pathField } from '../options.js';
import { SignalTrace } from '../signal-trace.js';
import { metric } from '../summary.js';
import { At24Eeprom, LM75_MAX_C, LM75_MIN_C, Lm75Sensor, type I2cClient } from './clients.js';
import { i2cConformance } from './conformance.js';
import { I2cConfigError } from './errors.js';
import { FileEepromStore } from './host.js';
import { BusClock, I2C_DEFAULT_MAX_TRANSFER, I2cDevice } from './model.js';
import { I2C_DEVICE_ID, I2C_FIRST_ADDRESS, I2C_LAST_ADDRESS } from './spec.js';

/** The trace signal a sensor reads when its entry names none. */
export const DEFAULT_SENSOR_SIGNAL = 'temperature';

const celsius = `expected a temperature from ${LM75_MIN_C} to ${LM75_MAX_C} °C`;

const options = z.object({
  sensor: z
    .array(z.string())
    .meta({ description: `an LM75-compatible temperature sensor ADDR[=SIGNAL] at a 7-bit address (0x48), reading trace SIGNAL (default '${DEFAULT_SENSOR_SIGNAL}'); repeatable` })
    .optional(),
  eeprom: z.array(z.string()).meta({ description: 'a 24C02 EEPROM ADDR=FILE (256 bytes; the file is created erased when missing); repeatable' }).optional(),
  trace: pathField('vehicle-signal trace (CSV time,signal,value) the sensors read, from the guest driver\'s start').optional(),
  temperature: z.number({ error: celsius }).min(LM75_MIN_C, { error: celsius }).max(LM75_MAX_C, { error: celsius }).meta({ description: '°C a sensor reads before its signal has a value (or without a trace)' }).default(25),
  maxTransfer: intField(1, 65536, 'longest read or write segment accepted, in bytes').default(I2C_DEFAULT_MAX_TRANSFER),
});

type I2cKindOptions = z.output<typeof options>;

/** Each list item may hold several, comma-separated (see gpio's kind: flags joined for a back-end process). */
function items(list: readonly string[] | undefined): string[] {
  return (list ?? []).flatMap((s) => s.split(',')).filter((s) => s.trim() !== '');
}

/** `0x48` or `72` → 72. @throws I2cConfigError naming `flag` */
function parseAddress(text: string, flag: string, entry: string): number {
  const t = text.trim();
  const n = /^0x[0-9a-f]{1,2}$/i.test(t) ? Number.parseInt(t.slice(2), 16) : /^\d{1,3}$/.test(t) ? Number(t) : NaN;
  if (!(n >= I2C_FIRST_ADDRESS && n <= I2C_LAST_ADDRESS)) {
    throw new I2cConfigError('I2C_BAD_OPTION', `${flag}: expected a 7-bit address from 0x03 to 0x77 (0x00-0x02 and 0x78-0x7f are reserved by I2C), got '${text}' in '${entry}'`);
  }
  return n;
}

export interface BusEntry {
  readonly address: number;
  readonly chip: 'lm75' | '24c02';
  /** lm75: the trace signal; 24c02: the backing file. */
  readonly arg: string;
}

/**
 * The bus from the options: addresses checked and unique.
 * @throws I2cConfigError I2C_BAD_OPTION naming --sensor or --eeprom
 */
export function busEntries(o: Pick<I2cKindOptions, 'sensor' | 'eeprom'>): BusEntry[] {
  const out: BusEntry[] = [];
  for (const s of items(o.sensor)) {
    const m = /^([^=]+)(?:=([^=\s]{1,64}))?$/.exec(s.trim());
    if (m === null) throw new I2cConfigError('I2C_BAD_OPTION', `--sensor: expected ADDR[=SIGNAL] (e.g. 0x48=coolant), got '${s}'`);
    // Safe: group 1 takes part in every match.
    out.push({ address: parseAddress(m[1]!, '--sensor', s), chip: 'lm75', arg: m[2] ?? DEFAULT_SENSOR_SIGNAL });
  }
  for (const e of items(o.eeprom)) {
    const m = /^([^=]+)=(.+)$/.exec(e.trim());
    if (m === null) throw new I2cConfigError('I2C_BAD_OPTION', `--eeprom: expected ADDR=FILE (e.g. 0x50=eeprom.bin), got '${e}'`);
    // Safe: both groups take part in every match.
    out.push({ address: parseAddress(m[1]!, '--eeprom', e), chip: '24c02', arg: m[2]! });
  }
  const seen = new Map<number, BusEntry>();
  for (const b of out) {
    const other = seen.get(b.address);
    if (other !== undefined) throw new I2cConfigError('I2C_BAD_OPTION', `--${b.chip === 'lm75' ? 'sensor' : 'eeprom'}: address 0x${b.address.toString(16)} is taken by the ${other.chip} there`);
    seen.set(b.address, b);
  }
  return out;
}

/** @throws I2cConfigError I2C_BAD_TRACE */
function loadTrace(path: string): SignalTrace {
  try {
    return SignalTrace.parse(readFileSync(path, 'utf8'), path);
  } catch (e: unknown) {
    throw new I2cConfigError('I2C_BAD_TRACE', `--trace: ${errorText(e)}`, { cause: e });
  }
}

function createI2c(o: I2cKindOptions): I2cDevice {
  const entries = busEntries(o);
  const trace = o.trace === undefined ? undefined : loadTrace(o.trace);
  const clock = new BusClock();
  const clients = new Map<number, I2cClient>();
  for (const e of entries) {
    if (e.chip === 'lm75') {
      const signal = e.arg;
      clients.set(e.address, new Lm75Sensor(() => {
        const t = clock.seconds();
        return (t === undefined ? undefined : trace?.valueAt(signal, t)) ?? o.temperature;
      }));
    } else clients.set(e.address, new At24Eeprom(new FileEepromStore(e.arg)));
  }
  return new I2cDevice({ clients, clock, maxTransfer: o.maxTransfer });
}

export const i2cKind = defineKind({
  name: 'i2c',
  virtioId: I2C_DEVICE_ID,
  vhostUserType: 'i2c',
  description: 'virtio-i2c (VIRTIO 1.3 §5.21): an I2C bus with LM75-compatible sensors fed from a signal trace and 24C02 EEPROMs in files; other addresses NACK',
  capabilities: ['sensor', 'eeprom', 'trace', 'temperature'],
  options,
  create: (o) => createI2c(o),
  conformance: i2cConformance,
  conformanceSetups: [{ label: 'a sensor and an EEPROM', options: { sensor: ['0x48'], eeprom: ['0x50={scratch}/eeprom.bin'] }, files: { 'eeprom.bin': 256 }, expected: 'conformance.expected.txt' }],
  frontend: {
    qemuDevice: 'vhost-user-i2c-pci',
    // Not measured: keep restart: on-failure refused for i2c.
    reconnect: false,
    minQemu: '7.2',
  },
  // i2c-dev gives /dev/i2c-N to i2c-tools; lm75 and at24 are the drivers the guest binds with new_device.
  guestModules: ['i2c-dev', 'lm75', 'at24', 'i2c-virtio'],
  manifest: {
    fields: {
      sensor: options.shape.sensor,
      eeprom: z.array(z.string()).meta({ description: 'a 24C02 EEPROM ADDR=FILE, the file relative to the manifest (created erased when missing)' }).optional(),
      trace: pathField('vehicle-signal trace (CSV time,signal,value), relative to the manifest').optional(),
      temperature: options.shape.temperature.unwrap().optional(),
    },
    check(e, add) {
      try {
        busEntries({ sensor: e['sensor'] as string[] | undefined, eeprom: e['eeprom'] as string[] | undefined });
      } catch (err: unknown) {
        if (!(err instanceof I2cConfigError)) throw err;
        add([err.message.startsWith('--eeprom') ? 'eeprom' : 'sensor'], err.message.replace(/^--[a-z]+: /, ''));
      }
    },
    checkFiles(e, ctx, add) {
      if (typeof e['trace'] === 'string' && !ctx.exists(ctx.resolve(e['trace']))) add(['trace'], `no such file: ${e['trace']}`);
    },
    plan: (e, ctx) => ({
      options: {
        ...(e['sensor'] === undefined ? {} : { sensor: e['sensor'] }),
        ...(e['eeprom'] === undefined ? {} : { eeprom: items(e['eeprom'] as string[]).map((x) => x.replace(/=(.+)$/, (_m, f: string) => `=${ctx.resolveManifestPath(f)}`)) }),
        ...(typeof e['trace'] === 'string' ? { trace: ctx.resolveManifestPath(e['trace']) } : {}),
        ...(e['temperature'] === undefined ? {} : { temperature: e['temperature'] }),
      },
    }),
  },
  summarize: (m) => `${metric(m, ['reads'])} rd, ${metric(m, ['writes'])} wr, ${metric(m, ['nacks'])} nack`,
});
