// SPDX-License-Identifier: Apache-2.0
/** The check catalog: IDs, metadata, per-device assembly and filters. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK_GROUPS } from '../device/conformance.js';
import { hasCode } from '../errors.js';
import { GENERIC_CHECKS, catalogFor, fullCatalog, matches, selectChecks } from './catalog.js';
import { DEVICE_CONFORMANCE, conformanceFor } from './devices.js';

test('catalog: IDs are unique, well formed, and every check says where its requirement comes from', () => {
  const all = fullCatalog();
  assert.equal(new Set(all.map((c) => c.id)).size, all.length);
  const perDevice = Object.values(DEVICE_CONFORMANCE).flatMap((d) => d.checks);
  assert.equal(all.length, GENERIC_CHECKS.length + perDevice.length, 'no ID is shared between generic and device checks');
  for (const c of all) {
    assert.match(c.id, /^[a-z0-9]+(\.[a-z0-9-]+)+$/, c.id);
    assert.ok(CHECK_GROUPS.includes(c.group), c.id);
    assert.ok(['MUST', 'SHOULD', 'MAY'].includes(c.level), c.id);
    assert.ok(c.title.length > 10 && c.source.length > 10, c.id);
    // VIRTIO 1.4 for devices it added (CAN).
    assert.match(c.source, /VIRTIO 1\.[34]|vhost-user|AVPS-/, `${c.id} cites VIRTIO, vhost-user or AVPS`);
  }
});

test('catalog: device checks live in their device folder, carry its name as ID prefix, and apply to that device only', () => {
  for (const [name, d] of Object.entries(DEVICE_CONFORMANCE)) {
    assert.equal(d.device, name);
    for (const c of d.checks) {
      assert.ok(c.id.startsWith(`${name}.`), c.id);
      assert.deepEqual(c.devices, [name]);
      // Mostly 'device'; a device may add hostile checks of its own (requests that break its rules).
      assert.ok(c.group === 'device' || c.group === 'hostile', `${c.id} is in group ${c.group}`);
    }
    const ids = catalogFor(d).map((c) => c.id);
    assert.deepEqual(ids.slice(0, GENERIC_CHECKS.length), GENERIC_CHECKS.map((c) => c.id), 'generic checks first, in order');
    for (const other of Object.keys(DEVICE_CONFORMANCE).filter((o) => o !== name)) assert.ok(!ids.some((id) => id.startsWith(`${other}.`)), `${name} runs no ${other} check`);
  }
  assert.throws(() => conformanceFor('hologram'), (e: unknown) => hasCode(e, 'CONFORMANCE_UNKNOWN_DEVICE'));
});

test('catalog: the groups the issue asks for are covered', () => {
  const ids = new Set(fullCatalog().map((c) => c.id));
  for (const id of ['proto.handshake.version1', 'proto.reply-ack', 'proto.queue-num', 'proto.config.size-echo', 'proto.config.out-of-range', 'proto.unknown-message', 'proto.ring.start-stop-restart', 'proto.reset-device', 'proto.reconnect', 'queue.used-len', 'queue.event-idx.used-event', 'queue.notify.no-interrupt', 'queue.event-idx.avail-event', 'queue.indirect', 'queue.in-order', 'hostile.desc-loop', 'hostile.next-out-of-range', 'hostile.head-out-of-range', 'hostile.indirect-nested', 'hostile.indirect-not-negotiated', 'hostile.indirect-len-zero', 'hostile.indirect-len-unaligned', 'hostile.addr-outside-memory', 'hostile.huge-length', 'hostile.avail-idx-jump', 'hostile.readable-after-writable', 'hostile.wrong-direction', 'blk.read-write', 'blk.flush', 'blk.get-id', 'blk.discard', 'blk.write-zeroes', 'blk.read-only', 'blk.out-of-range.read', 'blk.config.capacity', 'rng.bytes', 'rng.used-len']) {
    assert.ok(ids.has(id), id);
  }
});

test('selectChecks: exact ID, ID prefix and group; --skip after --only; typos are errors', () => {
  const blk = catalogFor(conformanceFor('blk'));
  const ids = (only: string[], skip: string[] = []) => selectChecks(blk, { only, skip }).map((c) => c.id);
  assert.deepEqual(ids(['blk.flush']), ['blk.flush']);
  assert.ok(ids(['hostile.indirect']).every((id) => id.startsWith('hostile.indirect')));
  assert.equal(ids(['hostile']).length, blk.filter((c) => c.group === 'hostile').length);
  assert.ok(!ids(['device'], ['blk.discard']).some((id) => id.startsWith('blk.discard')));
  assert.ok(matches({ id: 'queue.wrap', group: 'queue' } as never, 'queue'));
  assert.throws(() => ids(['hostile.nope']), (e: unknown) => hasCode(e, 'CONFORMANCE_BAD_FILTER'));
  assert.throws(() => ids(['rng.bytes']), (e: unknown) => hasCode(e, 'CONFORMANCE_BAD_FILTER'), 'an rng check selected for blk leaves nothing');
  assert.throws(() => ids([], ['protocol', 'queue', 'hostile', 'device']), (e: unknown) => hasCode(e, 'CONFORMANCE_BAD_FILTER'));
});
