// SPDX-License-Identifier: Apache-2.0
/** The guest image: build, kernel command line, guest console markers. Re-exports only. */
export { buildGuestImage, defaultCacheDir, type GuestImage, type GuestImageOptions } from './build.js';
export type { DebPackage, Progress } from './apt.js';
export {
  BASE_KERNEL_PARAMS,
  X86_CMDLINE_MAX_BYTES,
  bzImageCmdlineLimit,
  checkCmdlineLength,
  cmdParam,
  kernelCmdline,
  scriptParam,
} from './cmdline.js';
export { DEFAULT_GUEST_MODULES } from './modules.js';
export { DEFAULT_GUEST_KERNEL, GUEST_KERNELS, isGuestKernel, type GuestKernel } from './kernels.js';
export { EXTRA_MODULES } from './extra-modules.js';
export { EXIT_LINE, GUEST_MARKER, INSMOD_FAILED_LINE, KV_LINE, READY_LINE, failedModules, parseGuestKv } from './markers.js';
