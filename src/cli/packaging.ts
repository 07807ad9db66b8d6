// SPDX-License-Identifier: Apache-2.0
/**
 * The files AVP ships for each device kind, derived from the device registry: a vhost-user
 * back-end program `bin/avp-vhost-user-<kind>.js` (the same as `avp serve <kind>`, under a name a
 * QEMU/libvirt JSON descriptor can point at), that descriptor
 * `share/qemu/vhost-user/50-avp-<kind>.json` (docs/interop/vhost-user.json: description, type,
 * binary), and package.json's `bin` map. scripts/gen-packaging.mjs writes them at build; a test
 * fails when a committed file differs from what would be generated.
 *
 * Owns: the names, paths and contents. Does not own: the programs' behaviour (cli/commands/serve.ts).
 */
import { DEVICE_KINDS, type DeviceKind } from '../devices/registry.js';

/** Where `npm install -g` / a distribution package installs the programs (the descriptors' binary). */
export const INSTALL_BIN_DIR = '/usr/local/bin';

/** `avp-vhost-user-<kind>`: the program name of a kind's back-end. */
export function programName(kind: Pick<DeviceKind, 'name'>): string {
  return `avp-vhost-user-${kind.name}`;
}

/** One generated file: path relative to the package root, and its exact text. */
export interface GeneratedFile {
  path: string;
  text: string;
}

function program(kind: DeviceKind): GeneratedFile {
  return {
    path: `bin/${programName(kind)}.js`,
    text: [
      '#!/usr/bin/env node',
      `// vhost-user back-end program for QEMU/libvirt (share/qemu/vhost-user/50-avp-${kind.name}.json):`,
      `// the same as \`avp serve ${kind.name}\`, under a name a JSON descriptor can point at.`,
      '// Generated from the device registry by scripts/gen-packaging.mjs; do not edit.',
      "import { runServe } from './serve-wrapper.js';",
      `await runServe('${kind.name}');`,
      '',
    ].join('\n'),
  };
}

function descriptor(kind: DeviceKind): GeneratedFile {
  const desc = { description: `AVP ${kind.description}`, type: kind.vhostUserType, binary: `${INSTALL_BIN_DIR}/${programName(kind)}` };
  return { path: `share/qemu/vhost-user/50-avp-${kind.name}.json`, text: `${JSON.stringify(desc, null, 2)}\n` };
}

/** Every generated file, in registry order. */
export function packagingFiles(): GeneratedFile[] {
  return DEVICE_KINDS.flatMap((k) => [program(k), descriptor(k)]);
}

/** package.json's `bin`: `avp` and one program per kind. */
export function binMap(): Record<string, string> {
  return { avp: 'bin/avp.js', ...Object.fromEntries(DEVICE_KINDS.map((k) => [programName(k), `bin/${programName(k)}.js`])) };
}
