// SPDX-License-Identifier: Apache-2.0
/** Options derived from a kind's zod schema: flags, parsing with named errors, and the way back to flags. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { hasCode } from '../errors.js';
import { boolField, cliFlags, coerceCliValues, intField, parseOptions, sizeBytes, toServeFlags } from './options.js';
import { DEVICE_KINDS, createDevice, kindOf } from './registry.js';

const kind = {
  name: 'demo',
  options: z.object({
    numQueues: intField(1, 1024, 'request queues').default(1),
    readOnly: boolField('read-only').default(false),
    discard: boolField('offer discard').default(true),
    peers: z.array(z.number().int()).meta({ description: 'peer CIDs' }).optional(),
    label: z.string().meta({ description: 'a label', cli: false }).optional(),
  }),
};

test('cliFlags: kebab-case flags, --no-x for booleans defaulting to true, lists variadic, cli:false left out', () => {
  assert.deepEqual(
    cliFlags(kind.options).map((f) => f.flags),
    ['--num-queues <queues>', '--read-only', '--no-discard', '--peers <peers...>'],
  );
  assert.equal(cliFlags(kind.options)[0]?.description, 'request queues (default 1)');
});

test('parseOptions (cli): strings become numbers, lists split at commas, defaults applied', () => {
  assert.deepEqual(parseOptions(kind, { numQueues: '4', peers: ['4,5', '6'] }, 'cli'), { numQueues: 4, readOnly: false, discard: true, peers: [4, 5, 6] });
  assert.deepEqual(coerceCliValues(kind.options, { numQueues: ' ' }), { numQueues: ' ' }, 'blank stays a string, and is refused');
});

test('parseOptions: errors name the flag (cli) or the key (data), with what is expected and what came', () => {
  assert.throws(() => parseOptions(kind, { numQueues: '0' }, 'cli'), (e: unknown) => hasCode(e, 'DEVICE_BAD_OPTION') && (e as Error).message === '--num-queues: expected an integer from 1 to 1024, got 0');
  assert.throws(() => parseOptions(kind, { numQueues: 2000 }), { message: 'numQueues: expected an integer from 1 to 1024, got 2000' });
  assert.throws(() => parseOptions(kind, { peers: ['x'] }, 'cli'), { message: /^--peers\[0\]: .* got "x"$/ });
  assert.throws(() => parseOptions(kind, { colour: 'red' }, 'cli'), (e: unknown) => hasCode(e, 'DEVICE_UNKNOWN_OPTION') && /unknown option --colour for demo; known: --num-queues/.test((e as Error).message));
});

test('toServeFlags: the inverse of parsing (defaults left out, --no-x, lists joined)', () => {
  const argv = toServeFlags(kind, { numQueues: 2, readOnly: true, discard: false, peers: [4, 5] });
  assert.deepEqual(argv, ['--num-queues', '2', '--read-only', '--no-discard', '--peers', '4,5']);
  const back: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--read-only') back['readOnly'] = true;
    else if (a === '--no-discard') back['discard'] = false;
    else back[a === '--num-queues' ? 'numQueues' : 'peers'] = argv[++i];
  }
  assert.deepEqual(parseOptions(kind, back, 'cli'), { numQueues: 2, readOnly: true, discard: false, peers: [4, 5] });
  assert.throws(() => toServeFlags(kind, { label: 'x' }), (e: unknown) => hasCode(e, 'DEVICE_UNKNOWN_OPTION'));
});

test('every kind: its conformance set-up options survive the trip to flags and back', () => {
  for (const k of DEVICE_KINDS) {
    for (const s of k.conformanceSetups) assert.doesNotThrow(() => toServeFlags(k, s.options), `${k.name} ${s.label}`);
  }
});

test('sizes: bytes or a binary unit', () => {
  assert.equal(sizeBytes('64M'), 64 << 20);
  assert.equal(sizeBytes('1GiB'), 2 ** 30);
  assert.equal(sizeBytes(4096), 4096);
  assert.equal(sizeBytes('1.5G'), undefined);
});

test('registry: unknown kinds are named, with the known ones', () => {
  assert.throws(() => kindOf('warp'), (e: unknown) => hasCode(e, 'DEVICE_UNKNOWN_KIND') && /known: rng, blk, net, vsock/.test((e as Error).message));
  assert.throws(() => createDevice({ kind: 'rng', options: { maxBytes: 0 } }), { code: 'DEVICE_BAD_OPTION', message: 'maxBytes: expected an integer from 1 to 1073741824, got 0' });
});
