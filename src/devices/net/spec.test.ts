// SPDX-License-Identifier: Apache-2.0
/** virtio-net wire structs against byte layouts written out from VIRTIO 1.3 §5.1.4 and §5.1.6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NET_DEVICE_ID, VIRTIO_NET_CONFIG_SIZE, VIRTIO_NET_HDR_SIZE, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS, virtioNetConfig, virtioNetHdr } from './spec.js';

test('net spec: device ID 1, feature bit numbers', () => {
  assert.equal(NET_DEVICE_ID, 1);
  assert.equal(VIRTIO_NET_F_MTU, 3);
  assert.equal(VIRTIO_NET_F_MRG_RXBUF, 15);
  assert.equal(VIRTIO_NET_F_STATUS, 16);
});

test('net spec: virtio_net_hdr is 12 bytes: flags, gso_type, le16 hdr_len, gso_size, csum_start, csum_offset, num_buffers', () => {
  assert.equal(VIRTIO_NET_HDR_SIZE, 12);
  const bytes = Uint8Array.of(1, 0x81, 0x34, 0x12, 0x78, 0x56, 0x0e, 0, 0x10, 0, 3, 0);
  const h = virtioNetHdr.decode(new DataView(bytes.buffer), 0);
  assert.deepEqual(h, { flags: 1, gsoType: 0x81, hdrLen: 0x1234, gsoSize: 0x5678, csumStart: 14, csumOffset: 16, numBuffers: 3 });
  const out = new Uint8Array(12);
  virtioNetHdr.encode(h, new DataView(out.buffer), 0);
  assert.deepEqual(out, bytes);
});

test('net spec: config space: mac[6] @0, le16 status @6, le16 max_virtqueue_pairs @8, le16 mtu @10', () => {
  assert.equal(VIRTIO_NET_CONFIG_SIZE, 12);
  const bytes = Uint8Array.of(0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0, 0xdc, 0x05);
  const c = virtioNetConfig.decode(new DataView(bytes.buffer), 0);
  assert.deepEqual({ ...c, mac: [...c.mac] }, { mac: [0x52, 0x54, 0, 1, 2, 3], status: 1, maxVirtqueuePairs: 1, mtu: 1500 });
  const out = new Uint8Array(12);
  virtioNetConfig.encode(c, new DataView(out.buffer), 0);
  assert.deepEqual(out, bytes);
});
