// SPDX-License-Identifier: Apache-2.0
/**
 * The claim of the device registry, checked for every kind it lists: each surface derives from
 * the kind (CLI, manifest schema and JSON Schema, qemu-args, conformance with its expected files,
 * packaging, status summary, guest modules), and no code outside a kind's folder names it, except
 * the platform's cross-VM rules for switches (net) and vsock peers, which the issue keeps there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogFor } from '../conformance/catalog.js';
import { cliFlags } from '../devices/options.js';
import { DEVICE_KINDS } from '../devices/registry.js';
import { vhostUserDevice } from '../platform/attach.js';
import { DEFAULT_GUEST_MODULES } from '../platform/image/modules.js';
import { manifestJsonSchema } from '../platform/manifest/json-schema.js';
import { parseManifest } from '../platform/manifest/load.js';
import { qemuArgs } from '../platform/qemu.js';
import { summarizeMetrics } from '../platform/run/status.js';
import { binMap, packagingFiles, programName } from './packaging.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AVP = join(ROOT, 'bin/avp.js');

for (const kind of DEVICE_KINDS) {
  test(`device kind ${kind.name}: every surface derives from it`, () => {
    // CLI: avp serve <kind> --help lists every flag the options schema gives.
    const help = spawnSync(process.execPath, [AVP, 'serve', kind.name, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    for (const f of cliFlags(kind.options)) assert.ok(help.stdout.includes(f.flags.split(' ')[0] ?? ''), `${kind.name}: --help shows ${f.flags}`);
    // Manifest and JSON Schema.
    const oneOf = JSON.stringify(manifestJsonSchema());
    assert.ok(oneOf.includes(`"const":"${kind.name}"`), `${kind.name} is a manifest kind in the JSON Schema`);
    const bad = parseManifest(`name: p\nvms:\n  - name: a\n    devices:\n      - kind: ${kind.name}\n        noSuchField: 1\n`);
    assert.ok(bad.issues.some((i) => i.path.endsWith('noSuchField')), `${kind.name}: an unknown manifest field is named`);
    // qemu-args: the conformance set-up's options attach to the kind's QEMU device.
    const setup = kind.conformanceSetups[0];
    assert.ok(setup !== undefined, `${kind.name} has a conformance set-up`);
    const argv = qemuArgs({ kernel: '/k', initrd: '/i', devices: [vhostUserDevice(kind.name, '/s.sock', setup.options)] });
    assert.ok(argv.some((a) => a.startsWith(`${kind.frontend.qemuDevice},`)), `${kind.name}: -device ${kind.frontend.qemuDevice}`);
    if (kind.frontend.minQemu !== null) assert.match(kind.frontend.minQemu, /^\d+\.\d+$/);
    // Conformance: its checks are in its catalog, and each set-up's expected file is beside it.
    const ids = catalogFor(kind.conformance).map((c) => c.id);
    assert.ok(kind.conformance.checks.every((c) => ids.includes(c.id)), `${kind.name}: device checks in the catalog`);
    for (const s of kind.conformanceSetups) assert.ok(existsSync(join(ROOT, 'src/devices', kind.name, s.expected)), `${kind.name}: ${s.expected}`);
    // Packaging: program, descriptor and package.json bin.
    assert.equal(binMap()[programName(kind)], `bin/${programName(kind)}.js`);
    for (const f of packagingFiles().filter((x) => x.path.includes(`-${kind.name}.`))) assert.equal(readFileSync(join(ROOT, f.path), 'utf8'), f.text, `${f.path} is generated and current`);
    // Status board and guest modules.
    assert.equal(typeof summarizeMetrics({ device: kind.name }), 'string');
    for (const m of kind.guestModules) assert.ok(DEFAULT_GUEST_MODULES.includes(m), `${kind.name}: guest module ${m} in the image`);
  });
}

test('package.json bin and the generated files are current (npm run build writes them)', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.deepEqual(pkg.bin, binMap());
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/gen-packaging.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

/** Non-test TypeScript files under src/, relative to src/. */
function sources(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [relative(join(ROOT, 'src'), p)] : [];
  });
}

/**
 * Where the platform's cross-VM rules (switches, vsock peers), the switch program and the
 * benchmark commands (each compares one device with a peer) may name a kind.
 */
const CROSS_VM: Readonly<Record<string, readonly string[]>> = {
  blk: ['cli/commands/bench.ts'],
  net: ['platform/manifest/checks.ts', 'platform/manifest/plan.ts', 'platform/run/launch.ts', 'cli/commands/switch.ts', 'cli/commands/bench-net.ts'],
  vsock: ['platform/manifest/checks.ts', 'platform/manifest/plan.ts', 'platform/run/launch.ts'],
  // A virtio-can device joins its bus (the VMs' can: lists share the word); the kernel's CAN core module is also called can.
  can: ['platform/manifest/checks.ts', 'platform/manifest/plan.ts', 'platform/manifest/buses.ts', 'platform/image/modules.ts'],
};

/**
 * Files where a kind's name is another word that reads the same: zod's `io: 'input'` option, and
 * the `avp input` command with the control request it looks for (any device may take it).
 */
const HOMONYMS: Readonly<Record<string, readonly string[]>> = {
  // zod's io option, `avp input`, and the run control protocol's and the dashboard's `input`
  // message (input events for a VM's screen, whatever device serves them).
  input: ['platform/manifest/json-schema.ts', 'cli/commands/control.ts', 'platform/run/control-socket.ts', 'ui/server.ts', 'ui/wire.ts', 'ui/page/app.ts', 'ui/page/screens.ts'],
};

test('no code outside a kind folder names the kind (a new device is its folder plus one registry line)', () => {
  const offenders: string[] = [];
  for (const file of sources()) {
    if (file.startsWith('devices/') || file.startsWith('bench/') || file.includes('/testing/') || file.endsWith('testing.ts')) continue;
    const text = readFileSync(join(ROOT, 'src', file), 'utf8');
    for (const kind of DEVICE_KINDS) {
      if (CROSS_VM[kind.name]?.includes(file) === true || HOMONYMS[kind.name]?.includes(file) === true) continue;
      // A kind named as a string in code: `'rng'`, `kind === "blk"`.
      if (new RegExp(`['"\`]${kind.name}['"\`]`).test(text.replace(/^\s*(\/\/|\/\*|\*).*$/gm, ''))) offenders.push(`${file} names '${kind.name}'`);
    }
  }
  assert.deepEqual(offenders, []);
});
