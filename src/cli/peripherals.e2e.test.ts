// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: AVP's peripheral back-ends serving a stock Linux 6.12 guest under QEMU 10.0
 * (software emulation), with the guest's own drivers and tools.
 *
 * - gpio (`avp serve gpio`, vhost-user-gpio-pci, gpio-virtio): the guest sees the named lines
 *   (gpioinfo), reads a line the signal trace drives and one the script drives (gpioget), sets an
 *   output the host observes on the control socket (gpioset), and waits for a rising edge
 *   (gpiomon) that the host makes with `set door 1` on the control socket once the guest has
 *   enabled the interrupt; then reads the new level.
 * - i2c (`avp serve i2c`, vhost-user-i2c-pci, i2c-virtio): i2cdetect finds exactly the simulated
 *   devices (everything else NACKs); the guest binds lm75 and at24 through new_device, reads the
 *   coolant temperature the trace feeds from hwmon, reads the EEPROM bytes the host put in its
 *   file and writes bytes the host then finds in the file.
 * - crypto (`avp serve crypto`, `-object cryptodev-vhost-user` + virtio-crypto-pci, virtio_crypto):
 *   the guest kernel registers `virtio_crypto_aes_cbc` and its own crypto self-tests pass through
 *   the back-end (/proc/crypto `selftest : passed`); the back-end's metrics show the sessions QEMU
 *   forwarded and the encryptions and decryptions it did.
 * Every process is stopped and every temp file removed, pass or fail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestImage, scriptParam, type GuestImage } from '../platform/image/index.js';
import { runGuest, startVm, type VmDevice, type VmSpec } from '../platform/qemu.js';
import { vhostUserDevice } from '../platform/attach.js';
import { parseGuestKv } from '../platform/image/markers.js';
import { startBackend, type BackendProcess } from './testing/backend-process.js';

const BOOT_MS = 300_000;
/** The QEMU these tests run (the e2e host's, 10.0): attachment quirks for older ones do not apply. */
const QEMU = '10.0';

let image: GuestImage;
let dir: string;
const backends: BackendProcess[] = [];
const sockets: Socket[] = [];

before(async () => {
  image = await buildGuestImage({ onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'avp-periph-e2e-'));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function vm(devices: readonly VmDevice[], script: string): VmSpec {
  return { kernel: image.kernel, initrd: image.initramfs, cmdlineLimit: image.cmdlineLimit, devices, append: [scriptParam(script)] };
}

async function backend(kind: string, args: string[]): Promise<BackendProcess> {
  const b = await startBackend(kind, args);
  backends.push(b);
  return b;
}

/** A control-socket client: JSON lines in, text commands out; waits for lines matching a test. */
function controlClient(path: string) {
  const sock = createConnection(path);
  sockets.push(sock);
  const got: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }>();
  let partial = '';
  sock.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const e = JSON.parse(l) as Record<string, unknown>;
      got.push(e);
      for (const w of [...waiters]) {
        if (!w.match(e)) continue;
        waiters.delete(w);
        w.resolve(e);
      }
    }
  });
  sock.on('error', () => {});
  return {
    got,
    send: (line: string) => sock.write(`${line}\n`),
    waitFor(match: (e: Record<string, unknown>) => boolean, what: string, timeoutMs = BOOT_MS): Promise<Record<string, unknown>> {
      const seen = got.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve: (e: Record<string, unknown>) => (clearTimeout(timer), resolve(e)) };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`control socket: no ${what} within ${timeoutMs} ms; got ${JSON.stringify(got)}`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
  };
}

test('e2e gpio: gpiod tools read named lines driven by a trace and a script, set an output the host sees, and get a host-driven edge', { timeout: BOOT_MS + 60_000 }, async () => {
  const trace = join(dir, 'gpio.csv');
  writeFileSync(trace, 'time,signal,value\n0,Vehicle.Ignition,1\n');
  const control = join(dir, 'gpio.ctl');
  const gpio = await backend('gpio', ['--lines', 'door:in,led:out,ignition:in@Vehicle.Ignition,hazard:in', '--trace', trace, '--drive', '0:hazard=1', '--control', control]);
  const ctl = controlClient(control);
  const script = `chip=$(gpiodetect | grep virtio | cut -d' ' -f1)
avp-kv chip "$chip"
avp-kv names "$(gpioinfo $chip | grep -o '"[a-z]*"' | tr -d '"' | tr '\\n' ' ')"
avp-kv ignition "$(gpioget $chip 2)"
avp-kv hazard "$(gpioget $chip 3)"
avp-kv door_before "$(gpioget $chip 0)"
gpioset --mode=time --sec=1 $chip 1=1
gpiomon --num-events=1 --rising-edge $chip 0 > /tmp/mon 2>&1 &
avp-kv mon started
wait $!
avp-kv mon_rc $?
avp-kv event "$(cat /tmp/mon)"
avp-kv door_after "$(gpioget $chip 0)"
`;
  const guest = await startVm(vm([vhostUserDevice('gpio', gpio.socket, {}, { qemuVersion: QEMU })], script));
  try {
    await ctl.waitFor((e) => e['event'] === 'output' && e['name'] === 'led' && e['value'] === 1, 'led driven high by the guest');
    await ctl.waitFor((e) => e['event'] === 'irq-type' && e['name'] === 'door' && e['type'] !== 'none', 'the guest enabling the door interrupt');
    ctl.send('set door 1');
    await ctl.waitFor((e) => e['ok'] === true, 'the answer to set door 1');
    await guest.waitForLine(/AVP-GUEST: EXIT 0/, BOOT_MS);
    const kv = parseGuestKv(guest.lines);
    assert.match(kv.get('chip') ?? '', /^gpiochip\d+$/);
    assert.equal(kv.get('names'), 'door led ignition hazard ');
    assert.equal(kv.get('ignition'), '1', 'the trace drives ignition high');
    assert.equal(kv.get('hazard'), '1', 'the script drives hazard high');
    assert.equal(kv.get('door_before'), '0');
    assert.equal(kv.get('mon_rc'), '0');
    assert.match(kv.get('event') ?? '', /RISING EDGE offset: 0/);
    assert.equal(kv.get('door_after'), '1');
    assert.ok(ctl.got.some((e) => e['event'] === 'interrupt' && e['name'] === 'door'), 'the device delivered the interrupt');
  } finally {
    await guest.kill();
  }
});

test('e2e i2c: i2cdetect sees only the simulated chips; lm75 reads the trace-fed coolant temperature from hwmon; at24 reads and writes the EEPROM file', { timeout: BOOT_MS + 60_000 }, async () => {
  const trace = join(dir, 'i2c.csv');
  // 20 °C at the driver's start, 87.5 °C from 20 s on: the guest reads until it sees the second.
  writeFileSync(trace, 'time,signal,value\n0,Vehicle.Powertrain.CoolantTemperature,20\n20,Vehicle.Powertrain.CoolantTemperature,87.5\n');
  const eeprom = join(dir, 'eeprom.bin');
  writeFileSync(eeprom, Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff)));
  const i2c = await backend('i2c', ['--sensor', '0x48=Vehicle.Powertrain.CoolantTemperature', '--eeprom', `0x50=${eeprom}`, '--trace', trace]);
  const script = `bus=$(for a in /sys/bus/i2c/devices/i2c-*; do grep -q virtio $a/name && basename $a; done | head -1); n=\${bus#i2c-}
avp-kv bus "$(cat /sys/bus/i2c/devices/$bus/name)"
avp-kv detected "$(i2cdetect -y $n | tail -n +2 | cut -c5- | tr -s ' -' ' ' | xargs)"
echo lm75 0x48 > /sys/bus/i2c/devices/$bus/new_device
echo 24c02 0x50 > /sys/bus/i2c/devices/$bus/new_device
hw=""; i=0; while [ -z "$hw" ] && [ $i -lt 100 ]; do hw=$(grep -l lm75 /sys/class/hwmon/hwmon*/name 2>/dev/null | head -1); sleep 0.1; i=$((i+1)); done
hw=$(dirname "$hw")
seen=""; t=""; i=0
while [ "$t" != 87500 ] && [ $i -lt 600 ]; do t=$(cat $hw/temp1_input); case " $seen " in *" $t "*) ;; *) seen="$seen $t";; esac; sleep 0.2; i=$((i+1)); done
avp-kv temps "$(echo $seen)"
avp-kv temp "$t"
ee=/sys/bus/i2c/devices/$n-0050/eeprom
avp-kv eeprom "$(dd if=$ee bs=16 count=1 2>/dev/null | od -An -tx1 | xargs)"
printf 'AVP-I2C' | dd of=$ee bs=1 seek=100 conv=notrunc 2>/dev/null || avp-kv write_failed 1
avp-kv readback "$(dd if=$ee bs=1 skip=100 count=7 2>/dev/null)"
`;
  const r = await runGuest(vm([vhostUserDevice('i2c', i2c.socket, {}, { qemuVersion: QEMU })], script), { timeoutMs: BOOT_MS, expectStatus: 0 });
  const kv = r.kv;
  assert.equal(kv.get('bus'), 'i2c_virtio at virtio bus 0');
  assert.equal(kv.get('detected'), '48 50', 'only the two simulated chips answer; every other address NACKs');
  assert.equal(kv.get('temp'), '87500', 'hwmon reads the trace\'s 87.5 °C through lm75');
  for (const t of (kv.get('temps') ?? '').split(' ')) assert.ok(['20000', '87500'].includes(t), `every reading is a trace value (${kv.get('temps')})`);
  const expected = Array.from({ length: 16 }, (_, i) => ((i * 7 + 3) & 0xff).toString(16).padStart(2, '0')).join(' ');
  assert.equal(kv.get('eeprom'), expected, 'at24 reads the bytes of the host file');
  assert.equal(kv.get('write_failed'), undefined);
  assert.equal(kv.get('readback'), 'AVP-I2C');
  assert.equal(readFileSync(eeprom).subarray(100, 107).toString('latin1'), 'AVP-I2C', 'the guest\'s bytes are in the EEPROM file');
});

test('e2e crypto: the guest kernel\'s self-tests of virtio_crypto_aes_cbc pass through the back-end', { timeout: BOOT_MS + 60_000 }, async () => {
  const crypto = await backend('crypto', []);
  const script = `i=0; while ! grep -q virtio_crypto_aes_cbc /proc/crypto && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done
i=0; while [ "$(grep -A6 'virtio_crypto_aes_cbc' /proc/crypto | grep selftest | tr -d ' ')" = selftest:unknown ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
avp-kv module "$(grep -A1 'driver       : virtio_crypto_aes_cbc' /proc/crypto | grep module | cut -d: -f2 | xargs)"
avp-kv selftest "$(grep -A5 'driver       : virtio_crypto_aes_cbc' /proc/crypto | grep selftest | cut -d: -f2 | xargs)"
avp-kv ready "$(dmesg | grep -c 'Accelerator device is ready')"
avp-kv failures "$(dmesg | grep -c 'alg: skcipher: virtio_crypto_aes_cbc')"
`;
  const r = await runGuest(vm([vhostUserDevice('crypto', crypto.socket, {}, { qemuVersion: QEMU })], script), { timeoutMs: BOOT_MS, expectStatus: 0 });
  const kv = r.kv;
  assert.equal(kv.get('module'), 'virtio_crypto', 'the virtio driver registered cbc(aes)');
  assert.equal(kv.get('selftest'), 'passed', 'the kernel\'s cbc(aes) self-tests passed through our back-end');
  assert.equal(kv.get('ready'), '1');
  assert.equal(kv.get('failures'), '0');
  crypto.child.kill('SIGUSR1');
  const line = await crypto.waitLog(/"msg":"metrics"/);
  const m = (JSON.parse(line) as { metrics: Record<string, number> }).metrics;
  assert.ok((m['forwardedSessions'] ?? 0) >= 2, `QEMU forwarded the sessions (${JSON.stringify(m)})`);
  assert.ok((m['encrypted'] ?? 0) > 0 && (m['decrypted'] ?? 0) > 0, `the self-tests encrypted and decrypted through the data queue (${JSON.stringify(m)})`);
  assert.equal(m['badMessages'], 0);
});
