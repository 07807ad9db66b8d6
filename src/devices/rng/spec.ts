// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-entropy (virtio-rng) constants, VIRTIO 1.3 §5.4 "Entropy Device".
 *
 * Device ID 4; one virtqueue, `requestq` (§5.4.2); no device-specific feature bits (§5.4.3) and no
 * configuration space (§5.4.4). §5.4.6.2: "The device MUST place one or more random bytes into the
 * buffer, but it MAY use less than the entire buffer length."
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const RNG_DEVICE_ID = VIRTIO_ID.ENTROPY;
/** Index of the only queue. */
export const RNG_REQUESTQ = 0;
/** Largest queue the device accepts (the rust-vmm back-end uses the same; QEMU 7.2 asks for 4). */
export const RNG_QUEUE_MAX_SIZE = 1024;
/**
 * Default cap on bytes written per request: a guest cannot make the host produce unbounded output
 * with one huge buffer (Firecracker caps entropy requests at 64 KiB for the same reason).
 */
export const RNG_DEFAULT_MAX_BYTES_PER_REQUEST = 64 * 1024;
