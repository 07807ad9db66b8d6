// SPDX-License-Identifier: Apache-2.0
/**
 * Manifest loading: a table of bad manifests, each with the exact path, line, column and message
 * of its one error (YAML syntax, schema, cross-references, files); then valid manifests, their
 * defaults, JSON input, and the examples shipped in examples/.
 */
import { test } from 'node:test';
import { DEVICE_KINDS, kindOf } from '../../devices/registry.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPath, parseManifest } from './index.js';

const H = 'name: p\nvms:\n';
/** The kinds as the manifest error lists them: the registry's, in its order. */
const KINDS = DEVICE_KINDS.map((k) => k.name).join(', ');
/** Files that "exist" for these tests: anything under /boot/. */
const exists = (p: string): boolean => p.startsWith('/boot/');

// [case, manifest text, path, line, column, message]
const BAD: Array<[string, string, string, number, number, string]> = [
  ["syntax", 'name: p\nvms: [ {name: a}\n', "(syntax)", 3, 1, "Flow sequence in block collection must be sufficiently indented and end with a ]"],
  ["dupkey", 'name: p\nname: q\nvms:\n  - name: a\n', "(syntax)", 2, 1, "duplicate key 'name' in this mapping"],
  ["empty", '', "(root)", 1, 1, "the file is empty; expected a platform manifest (a mapping with name: and vms:)"],
  ["list", '- a\n- b\n', "(root)", 1, 1, "expected a platform manifest (a mapping); got a list"],
  ["noname", 'vms:\n  - name: a\n', "name", 1, 1, "missing; expected a name of 1-32 letters, digits, _ or -, starting with a letter or digit"],
  ["novms", 'name: p\n', "vms", 1, 1, "missing; expected a list of VMs"],
  ["emptyvms", 'name: p\nvms: []\n', "vms", 2, 6, "expected at least one VM; got an empty list"],
  ["typo", 'name: p\nvm:\n  - name: a\nvms:\n  - name: a\n', "vm", 2, 1, "unknown key 'vm'; expected one of: $schema, version, name, switches, buses, vms"],
  ["badname", H + '  - name: my vm\n', "vms[0].name", 3, 11, "expected a name of 1-32 letters, digits, _ or -, starting with a letter or digit; got \"my vm\""],
  ["mem15", H + '  - name: a\n    memory: 1.5G\n', "vms[0].memory", 4, 13, "expected MiB as a whole number, or a size with a unit such as 256M or 1G; got \"1.5G\""],
  ["mem64", H + '  - name: a\n    memory: 64M\n', "vms[0].memory", 4, 13, "64 MiB is too small: the built-in guest image needs at least 128 MiB"],
  ["memK", H + '  - name: a\n    memory: 1000K\n', "vms[0].memory", 4, 13, "expected a whole number of MiB; got \"1000K\""],
  ["cpus", H + '  - name: a\n    cpus: 0\n', "vms[0].cpus", 4, 11, "expected an integer from 1 to 64; got 0"],
  ["kind", H + '  - name: a\n    devices:\n      - kind: warp\n', "vms[0].devices[0].kind", 5, 15, `expected kind to be one of: ${KINDS}; got "warp"`],
  ["nokind", H + '  - name: a\n    devices:\n      - name: x\n', "vms[0].devices[0].kind", 5, 9, `missing; expected kind to be one of: ${KINDS}`],
  ["blkempty", H + '  - name: a\n    devices:\n      - kind: blk\n', "vms[0].devices[0]", 5, 9, "a blk device needs image:, size:, or both (size alone makes a scratch disk in the run directory)"],
  ["blkmissing", H + '  - name: a\n    devices:\n      - kind: blk\n        image: disks/a.img\n', "vms[0].devices[0].image", 6, 16, "file not found: /m/disks/a.img (give size: to create it)"],
  ["blksize", H + '  - name: a\n    devices:\n      - kind: blk\n        size: "12345"\n', "vms[0].devices[0].size", 6, 15, "expected a size in bytes or with a unit, such as 64M or 1G; got \"12345\""],
  ["blk1000", H + '  - name: a\n    devices:\n      - kind: blk\n        size: 1000\n', "vms[0].devices[0].size", 6, 15, "expected a whole number of 512-byte sectors; got 1000"],
  ["serial", H + '  - name: a\n    devices:\n      - kind: blk\n        size: 1M\n        serial: ABCDEFGHIJKLMNOPQRSTUVWXYZ\n', "vms[0].devices[0].serial", 7, 17, "expected at most 20 printable ASCII characters (VIRTIO_BLK_ID_BYTES); got \"ABCDEFGHIJKLMNOPQRSTUVWXYZ\""],
  ["noswitches", H + '  - name: a\n    devices:\n      - kind: net\n        switch: lan\n', "vms[0].devices[0].switch", 6, 17, "unknown switch 'lan': no switches are defined (add it under switches:)"],
  ["unkswitch", 'name: p\nswitches:\n  - name: lan\n  - name: can\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: wan\n', "vms[0].devices[0].switch", 9, 17, "unknown switch 'wan'; switches: lan, can"],
  ["multicast", 'name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: lan\n        mac: 03:00:00:00:00:01\n', "vms[0].devices[0].mac", 8, 14, "03:00:00:00:00:01 is a multicast address (low bit of the first octet set); expected a unicast MAC such as 52:54:00:12:34:56"],
  ["badmac", 'name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: lan\n        mac: 52:54:00:00:01\n', "vms[0].devices[0].mac", 8, 14, "expected a MAC address such as 52:54:00:12:34:56; got \"52:54:00:00:01\""],
  ["mtu", 'name: p\nswitches: [{name: lan, mtu: 1500}]\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: lan\n        mtu: 9000\n', "vms[0].devices[0].mtu", 8, 14, "9000 is larger than switch 'lan' forwards (mtu 1500)"],
  ["netiso", 'name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: lan\n        isolation: process\n', "vms[0].devices[0].isolation", 8, 9, "unknown key 'isolation'; expected one of: kind, name, switch, mac, mtu, rateLimit, priority, ring (a net device is one port of a back-end that serves several VMs, for net its switch: set isolation and restart there)"],
  ["rate", 'name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - kind: net\n        switch: lan\n        rateLimit: {}\n', "vms[0].devices[0].rateLimit", 8, 20, "expected bytesPerSecond, packetsPerSecond, or both"],
  ["cid2", H + '  - name: a\n    devices:\n      - kind: vsock\n        cid: 2\n', "vms[0].devices[0].cid", 6, 14, "expected a context ID from 3 to 4294967294 (0-2 are reserved: hypervisor, local, host; 0xffffffff is VMADDR_CID_ANY); got 2"],
  ["cidDup", H + '  - name: a\n    devices: [{kind: vsock, cid: 3}]\n  - name: b\n    devices: [{kind: vsock, cid: 3}]\n', "vms[1].devices[0].cid", 6, 34, "duplicate vsock cid 3 (also vms[0].devices[0].cid); each guest needs its own context ID"],
  ["twoVsock", H + '  - name: a\n    devices:\n      - {kind: vsock, cid: 3}\n      - {kind: vsock, name: v2, cid: 4}\n', "vms[0].devices[1].kind", 6, 16, "VM 'a' already has a vsock device (devices[0]); a guest has one context ID"],
  ["peerUnknown", H + '  - name: a\n    devices:\n      - kind: vsock\n        cid: 3\n        allowedPeers: [b]\n', "vms[0].devices[0].allowedPeers[0]", 7, 24, "unknown VM 'b'; VMs with a vsock device: a"],
  ["peerNoVsock", H + '  - name: a\n    devices:\n      - kind: vsock\n        cid: 3\n        allowedPeers: [b]\n  - name: b\n', "vms[0].devices[0].allowedPeers[0]", 7, 24, "VM 'b' has no vsock device to talk to"],
  ["peerSelf", H + '  - name: a\n    devices:\n      - {kind: vsock, cid: 3, allowedPeers: [a]}\n', "vms[0].devices[0].allowedPeers[0]", 5, 46, "'a' is this VM; list the other VMs it may talk to"],
  ["peerOneWay", H + '  - name: a\n    devices:\n      - {kind: vsock, cid: 3, allowedPeers: [b]}\n  - name: b\n    devices:\n      - {kind: vsock, cid: 4}\n', "vms[0].devices[0].allowedPeers[0]", 5, 46, "'b' does not allow 'a' back (add it to vms[1].devices[0].allowedPeers); vsock needs both sides to allow"],
  ["peerIso", H + '  - name: a\n    devices:\n      - {kind: vsock, cid: 3, allowedPeers: [b]}\n  - name: b\n    devices:\n      - {kind: vsock, cid: 4, allowedPeers: [a], isolation: process}\n', "vms[1].devices[0].isolation", 8, 50, "isolation must match its peer's (vms[0].devices[0].isolation is 'shared'): vsock peers share one back-end"],
  ["dupVm", H + '  - name: a\n  - name: a\n', "vms[1].name", 4, 11, "duplicate VM name 'a' (also vms[0].name)"],
  ["dupDev", H + '  - name: a\n    devices:\n      - kind: rng\n      - kind: rng\n', "vms[0].devices[1]", 6, 9, "duplicate device name 'rng' in VM 'a' (also vms[0].devices[0]); give each device of a kind a distinct name"],
  ["dupSwitch", 'name: p\nswitches:\n  - name: lan\n  - name: lan\nvms:\n  - name: a\n', "switches[1].name", 4, 11, "duplicate switch name 'lan' (also switches[0].name)"],
  ["dupMac", 'name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - {kind: net, switch: lan, mac: "52:54:00:00:00:01"}\n  - name: b\n    devices:\n      - {kind: net, switch: lan, mac: "52:54:00:00:00:01"}\n', "vms[1].devices[0].mac", 9, 39, "duplicate MAC address 52:54:00:00:00:01 (also vms[0].devices[0].mac)"],
  ["noInitrd", H + '  - name: a\n    boot:\n      kernel: /boot/vmlinuz\n', "vms[0].boot", 5, 7, "missing initrd: give the initramfs for kernel (AVP boots without a disk root)"],
  ["kernelMissing", H + '  - name: a\n    boot:\n      kernel: vmlinuz-x\n      initrd: /boot/initrd\n', "vms[0].boot.kernel", 5, 15, "file not found: /m/vmlinuz-x"],
  ["scriptKernel", H + '  - name: a\n    boot:\n      kernel: /boot/vmlinuz\n      initrd: /boot/initrd\n      script: echo hi\n', "vms[0].boot.script", 7, 7, "script runs in the built-in image only; with your own kernel, put the work in its initrd"],
  ["scriptCmd", H + '  - name: a\n    boot:\n      script: echo hi\n      command: echo ho\n', "vms[0].boot.command", 6, 7, "give either script or command, not both"],
  ["cmdQuote", H + '  - name: a\n    boot:\n      command: echo "hi"\n', "vms[0].boot.command", 5, 16, "expected one shell command without double quotes or line breaks (use script: for more)"],
  ["ready", H + '  - name: a\n    boot:\n      ready: "up ("\n', "vms[0].boot.ready", 5, 14, "expected a regular expression: Invalid regular expression: /up (/: Unterminated group"],
  ["longScript", H + '  - name: a\n    boot:\n      script: "' + 'x'.repeat(1600) + '"\n', "vms[0].boot.script", 5, 15, "the kernel command line would be 2176 bytes, over the kernel's limit of 2047 (the script travels on it base64-encoded, 4 bytes for every 3); shorten it by at least 97 bytes"],
  ["imageOther", H + '  - name: a\n    boot:\n      image: debian\n', "vms[0].boot.image", 5, 14, "expected 'builtin' (or give kernel and initrd instead); got \"debian\""],
  ["restartRng", H + '  - name: a\n    devices:\n      - kind: rng\n        restart: on-failure\n', "vms[0].devices[0].restart", 6, 18, "on-failure needs QEMU to reconnect to the restarted back-end, which vhost-user-rng-pci cannot (with a reconnecting socket it fails at start-up); use restart: no"],
  ["cmdline", H + '  - name: a\n    boot:\n      cmdline: \'foo="bar\'\n', "vms[0].boot.cmdline", 5, 16, "expected kernel parameters; a double quote is not closed"],
];

for (const [name, text, path, line, col, message] of BAD) {
  test(`bad manifest: ${name}`, () => {
    const r = parseManifest(text, { baseDir: '/m', fileExists: exists });
    assert.equal(r.model, undefined);
    assert.deepEqual(r.issues, [{ path, line, col, message }]);
  });
}

test('every problem is reported, in file order', () => {
  const text = `name: p
vms:
  - name: a
    memory: 64
    devices:
      - kind: rng
      - kind: rng
      - {kind: vsock, cid: 3, allowedPeers: [zz]}
  - name: a
`;
  const r = parseManifest(text, { baseDir: '/m', fileExists: exists });
  assert.deepEqual(
    r.issues.map((i) => `${i.line}:${i.col} ${i.path}`),
    ['4:13 vms[0].memory', '7:9 vms[0].devices[1]', '8:46 vms[0].devices[2].allowedPeers[0]', '9:11 vms[1].name'],
  );
});

test('unknown keys: one error per key, each at its key', () => {
  const r = parseManifest('name: p\ncolour: red\nvms:\n  - name: a\n    ram: 1G\n    disk: x\n');
  assert.deepEqual(
    r.issues.map((i) => [i.path, i.line, i.col]),
    [
      ['colour', 2, 1],
      ['vms[0].ram', 5, 5],
      ['vms[0].disk', 6, 5],
    ],
  );
});

test('defaults: built-in image, 256 MiB, 1 CPU, READY marker, device names from kinds, derived MAC, switch MTU', () => {
  const r = parseManifest('name: p\nswitches: [{name: lan}]\nvms:\n  - name: a\n    devices:\n      - kind: rng\n      - kind: net\n        switch: lan\n');
  assert.deepEqual(r.issues, []);
  const vm = r.model?.vms[0];
  assert.ok(vm !== undefined);
  assert.equal(vm.memoryMiB, 256);
  assert.equal(vm.cpus, 1);
  assert.deepEqual(vm.boot, { kind: 'builtin', linux: '6.12', cmdline: [], ready: 'AVP-GUEST: READY\\b' });
  assert.deepEqual(vm.console, { echo: true });
  assert.deepEqual(vm.devices[0], { kind: 'rng', name: 'rng', path: 'vms[0].devices[0]', isolation: 'shared', restart: 'no', entry: { kind: 'rng', isolation: 'shared', restart: 'no' } });
  const net = vm.devices[1];
  assert.equal(net?.kind, 'net');
  assert.equal(net?.entry['priority'], 0, 'the net kind default');
  assert.equal(net?.entry['mac'], undefined, 'derived when the run is planned (plan.test.ts)');
});

test('boot.linux picks the kernel series; YAML numbers 6.1 and 6.12 mean the series', () => {
  for (const [written, linux] of [['6.1', '6.1'], ['6.12', '6.12'], ['6.12-rt', '6.12-rt'], ['"6.12"', '6.12']] as const) {
    const r = parseManifest(`name: p\nvms:\n  - name: a\n    boot: { linux: ${written} }\n`);
    const boot = r.model?.vms[0]?.boot;
    assert.ok(boot?.kind === 'builtin', JSON.stringify(r.issues));
    assert.equal(boot.linux, linux);
  }
  const bad = parseManifest('name: p\nvms:\n  - name: a\n    boot: { linux: 5.10 }\n');
  assert.match(bad.issues[0]?.message ?? '', /expected one of: 6\.12, 6\.12-rt, 6\.1/);
});

test('memory and sizes: units, MiB, case', () => {
  const r = parseManifest(`${H}  - name: a\n    memory: 1g\n    devices: [{kind: blk, size: 512KiB}]\n  - name: b\n    memory: 300\n`);
  assert.deepEqual(r.issues, []);
  assert.equal(r.model?.vms[0]?.memoryMiB, 1024);
  assert.equal(r.model?.vms[1]?.memoryMiB, 300);
  const blk = r.model?.vms[0]?.devices[0];
  assert.ok(blk?.kind === 'blk');
  const planned = kindOf('blk').manifest.plan(blk.entry, { path: blk.path, vm: 'a', name: blk.name, vmDir: '/run/a', resolveManifestPath: (p) => `/m/${p}`, resolveRunPath: (p) => `/run/${p}` });
  assert.deepEqual(planned.files, [{ path: '/run/a/blk.img', sizeBytes: 512 * 1024 }], 'size alone: a scratch disk in the run directory');
});

test('relative paths start at the manifest folder; an existing blk image needs no size', () => {
  const r = parseManifest(`${H}  - name: a\n    boot: {kernel: ../boot/k, initrd: /boot/i, cmdline: 'root=/dev/vda quiet="a b"', ready: login}\n    devices: [{kind: blk, image: ../boot/disk.img}]\n`, {
    baseDir: '/m',
    fileExists: exists,
  });
  assert.deepEqual(r.issues, []);
  const vm = r.model?.vms[0];
  assert.deepEqual(vm?.boot, { kind: 'kernel', kernel: '/boot/k', initrd: '/boot/i', cmdline: ['root=/dev/vda', 'quiet="a b"'], ready: 'login' });
  assert.equal(vm?.devices[0]?.entry['image'], '../boot/disk.img');
  assert.equal(r.model?.baseDir, '/m', 'plan.ts resolves it from there');
});

test('JSON is accepted (it is YAML), with positions', () => {
  const ok = parseManifest('{"name": "p", "vms": [{"name": "a", "devices": [{"kind": "rng"}]}]}');
  assert.deepEqual(ok.issues, []);
  const bad = parseManifest('{\n  "name": "p",\n  "vms": [{"name": "a", "cpus": "two"}]\n}\n');
  assert.deepEqual(bad.issues, [{ path: 'vms[0].cpus', line: 3, col: 33, message: 'expected an integer from 1 to 64; got "two"' }]);
});

test('file checks can be skipped (layout tools)', () => {
  const r = parseManifest(`${H}  - name: a\n    devices: [{kind: blk, image: nowhere.img}]\n`, { baseDir: '/m', fileExists: () => false, skipFileChecks: true });
  assert.deepEqual(r.issues, []);
});

test('formatPath', () => {
  assert.equal(formatPath([]), '(root)');
  assert.equal(formatPath(['vms', 1, 'devices', 2, 'image']), 'vms[1].devices[2].image');
  assert.equal(formatPath(['switches', 0]), 'switches[0]');
});

for (const example of ['minimal', 'cockpit']) {
  test(`examples/${example}.yaml is valid`, () => {
    const file = fileURLToPath(new URL(`../../../examples/${example}.yaml`, import.meta.url));
    // The examples' own folder: the files they name (traces, sounds, images) are checked for real.
    const r = parseManifest(readFileSync(file, 'utf8'), { baseDir: dirname(file) });
    assert.deepEqual(r.issues, []);
    assert.ok(r.model !== undefined);
  });
}

test('gpio and i2c entries: line specs, script steps, bus addresses and trace files are checked where they are written', () => {
  const text = `${H}  - name: a
    devices:
      - {kind: gpio, name: g1, lines: [door, door]}
      - {kind: gpio, name: g2, lines: [a, b], drive: ["1:c=1"], trace: t.csv}
      - {kind: i2c, sensor: ["0x48"], eeprom: ["0x48=e.bin"]}
      - {kind: i2c, name: i2, sensor: ["0x80"]}
`;
  const r = parseManifest(text, { baseDir: '/m', fileExists: () => false });
  assert.deepEqual(
    r.issues.map((i) => `${i.path}: ${i.message}`),
    [
      "vms[0].devices[0].lines: the name 'door' is used twice (line names must be unique, VIRTIO 1.3 §5.17.6.1)",
      "vms[0].devices[1].drive: no line 'c' (lines: a, b)",
      'vms[0].devices[1].trace: no such file: t.csv',
      'vms[0].devices[2].eeprom: address 0x48 is taken by the lm75 there',
      "vms[0].devices[3].sensor: expected a 7-bit address from 0x03 to 0x77 (0x00-0x02 and 0x78-0x7f are reserved by I2C), got '0x80' in '0x80'",
    ],
  );
});
