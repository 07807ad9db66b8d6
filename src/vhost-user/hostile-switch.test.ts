// SPDX-License-Identifier: Apache-2.0
/**
 * Regression tests of issue #18 cases 3 and 4 against the real `avp switch` program (two ports),
 * driven by minimal virtio-net guests over vhost-user: port 1's front-end misbehaves (half a
 * header; a saturated call eventfd on its receive ring), port 2 sends a frame, and port 2 must
 * stay connected and served. The in-process variants with generic devices are in
 * hostile-frontend.test.ts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { closeQuiet, eventfdCreate, eventfdRead, eventfdSaturate, setNonBlocking } from '../sys/index.js';
import { frameBytes } from './testing/byte-builder.js';
import { sleepSync } from './testing/attacker.js';
import { NetTestGuest } from './testing/net-guest.js';

const BIN = fileURLToPath(new URL('../../bin/avp.js', import.meta.url));

/** `avp switch` with ports a and b in a temp folder; killed at the end of the test. */
async function startSwitch(t: TestContext): Promise<{ a: string; b: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'avp-hostile-sw-'));
  const a = join(dir, 'a.sock');
  const b = join(dir, 'b.sock');
  const child = spawn(process.execPath, [BIN, 'switch', '--port', `socket=${a},name=a`, '--port', `socket=${b},name=b`], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      seen += c;
      if (/serving/.test(seen)) resolve();
    });
    child.once('exit', () => reject(new Error(`avp switch exited early: ${seen}`)));
  });
  return { a, b };
}

/** A minimal virtio-net guest (testing/net-guest.ts); `rxCall` replaces the RX call fd. */
class Guest extends NetTestGuest {
  constructor(socket: string, opts: { rxCall?: number } = {}) {
    super(socket, { ...opts, replyTimeoutMs: 3000 });
  }

  /** Sends a broadcast frame; true when the switch completed the transmit. */
  send(): boolean {
    const f = new Uint8Array(64).fill(0xab);
    f.fill(0xff, 0, 6);
    f.set([0x52, 0x54, 0, 0, 0, 2], 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    return this.transmit(f, 3000) !== null;
  }

  /** Waits (polling the used ring, not the call fd) for a received frame. */
  received(ms = 3000): boolean {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.rx.popUsed() !== null) return true;
      sleepSync(10);
    }
    return false;
  }
}

test('regression: on avp switch, half a header on port a does not stop port b (#18 case 3)', async (t) => {
  const { a, b } = await startSwitch(t);
  const ga = new Guest(a);
  t.after(() => ga.fe.close());
  ga.fe.sendRaw(frameBytes(1, 1).subarray(0, 6));
  await delay(100);
  const gb = new Guest(b);
  t.after(() => gb.fe.close());
  assert.equal(gb.send(), true, 'port b transmit completed');
  assert.ok(gb.fe.getU64('GET_FEATURES') > 0n, 'port b answered');
});

for (const blocking of [false, true]) {
  test(`regression: on avp switch, a saturated ${blocking ? 'blocking' : 'non-blocking'} call eventfd on port a does not disconnect port b (#18 case 4)`, async (t) => {
    const { a, b } = await startSwitch(t);
    const call = blocking ? eventfdCreate(0) : eventfdCreate();
    t.after(() => {
      // Drain (never waiting): unblocks a back-end stuck writing it, before the fd goes away.
      setNonBlocking(call, true);
      eventfdRead(call);
      closeQuiet(call);
    });
    const ga = new Guest(a, { rxCall: call });
    t.after(() => ga.fe.close());
    // The switch signals a new call fd of a live ring once (QEMU's late call-fd swap): drain
    // that, then saturate; a signal landing in between is drained on the next try. (The switch
    // made the fd non-blocking on receipt: O_NONBLOCK is shared, so this changes nothing for it.)
    setNonBlocking(call, true);
    assert.ok(eventfdSaturate(call), 'the call eventfd could be brought to its maximum');
    const gb = new Guest(b);
    t.after(() => gb.fe.close());
    assert.equal(gb.send(), true, 'port b transmit completed');
    assert.ok(gb.fe.getU64('GET_FEATURES') > 0n, 'port b still connected');
    assert.equal(ga.received(), true, 'port a received the frame');
    assert.ok(ga.fe.getU64('GET_FEATURES') > 0n, 'port a still connected');
  });
}
