// SPDX-License-Identifier: Apache-2.0
/**
 * Feature negotiation, written once for every device (VIRTIO 1.3 §2.2, §3.1.1, §6.1).
 *
 * Rules enforced:
 * - §2.2.1 "The driver MUST NOT accept a feature which the device did not offer": such a feature
 *   set is refused (FEATURES_OK is not latched), and the refusal names the bits.
 * - §6.1 "A driver MUST accept VIRTIO_F_VERSION_1 if it is offered"; AVP devices are modern-only
 *   and §6.2 lets a device "fail to operate further if VIRTIO_F_VERSION_1 is not accepted".
 * - a device type's mandatory features (`required`, e.g. virtio-i2c's ZERO_LENGTH_REQUEST, which
 *   the device "MUST reject any driver that doesn't negotiate") are refused when missing.
 * Does not own: which bits a device offers (the device says), or transport-only bits such as
 * vhost-user's PROTOCOL_FEATURES (the vhost-user layer masks those before calling here).
 */
import { VIRTIO_F_VERSION_1, describeFeatures, featureBit } from '../spec/virtio.js';
import { DeviceError } from './errors.js';

/**
 * Checks a driver's feature set against the device's offer.
 * @returns the accepted features (equal to `driver`)
 * @throws DeviceError DEVICE_FEATURES_NOT_OFFERED, DEVICE_VERSION_1_REQUIRED or DEVICE_FEATURES_REQUIRED
 */
export function negotiateFeatures(offered: bigint, driver: bigint, names: Readonly<Record<number, string>> = {}, required = 0n): bigint {
  const extra = driver & ~offered;
  if (extra !== 0n) {
    throw new DeviceError(
      'DEVICE_FEATURES_NOT_OFFERED',
      `driver accepted feature bits the device did not offer: ${describeFeatures(extra, names).join(', ')} (0x${extra.toString(16)})`,
    );
  }
  if ((driver & featureBit(VIRTIO_F_VERSION_1)) === 0n) {
    throw new DeviceError('DEVICE_VERSION_1_REQUIRED', 'driver did not accept VIRTIO_F_VERSION_1 (bit 32); AVP devices are modern-only');
  }
  const missing = required & ~driver;
  if (missing !== 0n) {
    throw new DeviceError('DEVICE_FEATURES_REQUIRED', `driver did not accept feature bits the device requires: ${describeFeatures(missing, names).join(', ')} (0x${missing.toString(16)})`);
  }
  return driver;
}
