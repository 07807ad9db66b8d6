// SPDX-License-Identifier: Apache-2.0
/**
 * Device-layer errors: a driver (or transport) that breaks the VIRTIO initialisation protocol
 * (§3.1) or negotiates features the device did not offer (§2.2).
 */
import { AvpError } from '../errors.js';

export type DeviceErrorCode =
  /** The driver asked for feature bits the device did not offer (§2.2.1). */
  | 'DEVICE_FEATURES_NOT_OFFERED'
  /** The driver did not accept VIRTIO_F_VERSION_1; AVP devices are modern-only (§6.1). */
  | 'DEVICE_VERSION_1_REQUIRED'
  /** The driver did not accept a feature the device type makes mandatory (`VirtioDevice.requiredFeatures`). */
  | 'DEVICE_FEATURES_REQUIRED'
  /** A status write out of the §3.1.1 order, or one that clears bits without a reset. */
  | 'DEVICE_BAD_STATUS_TRANSITION'
  /** Features written outside the DRIVER state, before FEATURES_OK (§3.1.1 steps 4-5). */
  | 'DEVICE_FEATURES_LOCKED'
  /** A queue index the device does not have. */
  | 'DEVICE_NO_SUCH_QUEUE'
  /** A queue size of zero, not a power of 2, or above the device's maximum for that queue. */
  | 'DEVICE_BAD_QUEUE_SIZE'
  /** A config-space access outside the device's config layout. */
  | 'DEVICE_CONFIG_OUT_OF_RANGE';

export class DeviceError extends AvpError {
  readonly code: DeviceErrorCode;
  constructor(code: DeviceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
