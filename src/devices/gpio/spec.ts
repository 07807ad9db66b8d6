// SPDX-License-Identifier: Apache-2.0
/**
 * virtio-gpio constants and wire layouts, VIRTIO 1.3 §5.17 "GPIO Device" (device-types/gpio in
 * oasis-tcs/virtio-spec), spelled as in the spec.
 *
 * Device ID 41; queues 0 requestq and 1 eventq (the eventq only with VIRTIO_GPIO_F_IRQ); config
 * `{ le16 ngpio; u8 padding[2]; le32 gpio_names_size; }`. A request is `{ le16 type; le16 gpio;
 * le32 value; }` (8 bytes, device-readable) followed by `{ u8 status; u8 value; }` (device-writable;
 * GET_LINE_NAMES answers `status` then `gpio_names_size` bytes of names). An eventq buffer pair is
 * `{ le16 gpio; }` then `{ u8 status; }`.
 */
import { VIRTIO_ID } from '../../spec/virtio.js';

export const GPIO_DEVICE_ID = VIRTIO_ID.GPIO;
export const GPIO_REQUESTQ = 0;
export const GPIO_EVENTQ = 1;
/** QEMU's vhost-user-gpio-pci makes both queues 256 entries; Linux keeps one request per line in flight. */
export const GPIO_QUEUE_MAX_SIZE = 256;

/** Feature bit: the device supports interrupts on lines (§5.17.3). */
export const VIRTIO_GPIO_F_IRQ = 0;

/** Config layout (§5.17.4). */
export const GPIO_CONFIG_SIZE = 8;
export const GPIO_CFG_NGPIO = 0;
export const GPIO_CFG_NAMES_SIZE = 4;

/** Message types (§5.17.6). */
export const VIRTIO_GPIO_MSG_GET_LINE_NAMES = 0x0001;
export const VIRTIO_GPIO_MSG_GET_DIRECTION = 0x0002;
export const VIRTIO_GPIO_MSG_SET_DIRECTION = 0x0003;
export const VIRTIO_GPIO_MSG_GET_VALUE = 0x0004;
export const VIRTIO_GPIO_MSG_SET_VALUE = 0x0005;
export const VIRTIO_GPIO_MSG_SET_IRQ_TYPE = 0x0006;

export const VIRTIO_GPIO_STATUS_OK = 0x0;
export const VIRTIO_GPIO_STATUS_ERR = 0x1;

export const VIRTIO_GPIO_DIRECTION_NONE = 0x00;
export const VIRTIO_GPIO_DIRECTION_OUT = 0x01;
export const VIRTIO_GPIO_DIRECTION_IN = 0x02;

export const VIRTIO_GPIO_IRQ_TYPE_NONE = 0x00;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING = 0x01;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING = 0x02;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH = 0x03;
export const VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH = 0x04;
export const VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW = 0x08;

/** Every valid trigger type other than NONE. */
export const GPIO_IRQ_TYPES: ReadonlySet<number> = new Set([
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
]);

export const VIRTIO_GPIO_IRQ_STATUS_INVALID = 0x0;
export const VIRTIO_GPIO_IRQ_STATUS_VALID = 0x1;

/** Sizes of the request, response, irq request and irq response structs. */
export const GPIO_REQUEST_SIZE = 8;
export const GPIO_RESPONSE_SIZE = 2;
export const GPIO_IRQ_REQUEST_SIZE = 2;
export const GPIO_IRQ_RESPONSE_SIZE = 1;

/** The spec's names of a direction, for logs and the control socket. */
export function directionName(d: number): 'none' | 'out' | 'in' {
  return d === VIRTIO_GPIO_DIRECTION_OUT ? 'out' : d === VIRTIO_GPIO_DIRECTION_IN ? 'in' : 'none';
}

/** A trigger type's name (`edge-both`), or `type N` for a value the spec does not define. */
export function irqTypeName(t: number): string {
  switch (t) {
    case VIRTIO_GPIO_IRQ_TYPE_NONE:
      return 'none';
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING:
      return 'edge-rising';
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING:
      return 'edge-falling';
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH:
      return 'edge-both';
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH:
      return 'level-high';
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW:
      return 'level-low';
    default:
      return `type ${t}`;
  }
}
