// SPDX-License-Identifier: Apache-2.0
/**
 * TAP devices against the real kernel: an ARP request written into the TAP is answered by the
 * host's stack through it. Needs CAP_NET_ADMIN and /dev/net/tun (skipped otherwise); the
 * interface disappears when the fd closes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { POLLIN, poll } from './poll.js';
import { openTap } from './tap.js';

function tapUsable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no ip(8)';
  return undefined;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

test('tap: a bad name is refused before any system call', () => {
  assert.throws(() => openTap('a/b'), { code: 'SYS_INVALID_ARGUMENT' });
  assert.throws(() => openTap('x'.repeat(16)), { code: 'SYS_INVALID_ARGUMENT' });
});

test('tap: frames written are received by the host stack, its replies are read back', { skip: tapUsable() }, () => {
  const name = `avpt${process.pid % 100_000}`;
  const sub = `10.254.${process.pid % 250}`;
  const tap = openTap(name);
  try {
    assert.equal(tap.name, name);
    assert.ok(existsSync(`/sys/class/net/${name}`));
    const buf = new Uint8Array(2048);
    assert.equal(tap.read(buf), 0, 'nothing pending on a new TAP');
    ip('addr', 'add', `${sub}.1/24`, 'dev', name);
    ip('link', 'set', 'dev', name, 'up');
    const me = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01];
    const myIp = [10, 254, process.pid % 250, 2];
    const hostIp = [10, 254, process.pid % 250, 1];
    // Ethernet (broadcast, me, ARP) + ARP request: Ethernet/IPv4, op 1, sha me, spa myIp, tha 0, tpa hostIp.
    const arp = Uint8Array.from([...Array(6).fill(0xff), ...me, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, ...me, ...myIp, 0, 0, 0, 0, 0, 0, ...hostIp]);
    assert.equal(tap.write(arp), true);
    const deadline = Date.now() + 20_000;
    let reply: Uint8Array | undefined;
    while (reply === undefined && Date.now() < deadline) {
      if (!((poll([{ fd: tap.fd, events: POLLIN }], 1000)[0] ?? 0) & POLLIN)) continue;
      const n = tap.read(buf);
      const f = buf.slice(0, n);
      // ARP (0x0806) reply (op 2) to me.
      if (n >= 42 && f[12] === 0x08 && f[13] === 0x06 && f[21] === 2 && f.subarray(0, 6).every((b, i) => b === me[i])) reply = f;
    }
    assert.ok(reply, 'the host answered the ARP request through the TAP');
    assert.deepEqual([...reply.subarray(28, 32)], hostIp, 'sender IP is the host side');
  } finally {
    tap.close();
  }
  assert.equal(existsSync(`/sys/class/net/${name}`), false, 'the TAP is gone once closed');
});
