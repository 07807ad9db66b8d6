// SPDX-License-Identifier: Apache-2.0
/**
 * The guest kernels the built-in image can use, all Debian 12 packages: Linux 6.12 (default, from
 * bookworm-security), its PREEMPT_RT flavour, and Debian 12's own 6.1. And the names of the
 * packages that belong to one concrete kernel package (headers, kbuild, source), which must have
 * exactly its version: the kernel has CONFIG_MODVERSIONS, so a module built against other headers
 * does not load.
 *
 * Owns: series → meta package, the package naming of Debian's linux source package. Does not own:
 * resolving or downloading them (apt.ts), building modules (extra-modules.ts).
 *
 * Why 6.12: Debian 12's 6.1 has no virtio sound driver and no GPIO/I2C virtio drivers; 6.12 has
 * virtio_snd and, built from its linux-source, gpio-virtio and i2c-virtio
 * (shared/reference/device-wave-2.md §0-1).
 */
import type { DebPackage } from './apt.js';

export const GUEST_KERNELS = ['6.12', '6.12-rt', '6.1'] as const;
export type GuestKernel = (typeof GUEST_KERNELS)[number];
export const DEFAULT_GUEST_KERNEL: GuestKernel = '6.12';

/** The Debian meta package that depends on the newest concrete kernel of a series. */
const META_PACKAGES: Readonly<Record<GuestKernel, string>> = {
  '6.12': 'linux-image-6.12-amd64',
  '6.12-rt': 'linux-image-6.12-rt-amd64',
  // Debian 12's default kernel: linux-image-amd64 depends on the current 6.1 package.
  '6.1': 'linux-image-amd64',
};

export function isGuestKernel(v: unknown): v is GuestKernel {
  return typeof v === 'string' && (GUEST_KERNELS as readonly string[]).includes(v);
}

export function kernelMetaPackage(series: GuestKernel): string {
  return META_PACKAGES[series];
}

/**
 * A concrete kernel package names one build (`linux-image-6.12.117+deb12-amd64`,
 * `linux-image-6.1.0-56-amd64`); a meta package names a series (`linux-image-6.12-amd64`,
 * `linux-image-amd64`).
 */
export function isConcreteKernelPackage(name: string): boolean {
  return /^linux-image-\d+\.\d+\.\d+/.test(name);
}

/** The packages needed to build modules for a concrete kernel package, all at its version. */
export interface KernelBuildPackages {
  /** `linux-headers-<release>`: .config, Module.symvers (the MODVERSIONS CRCs), arch headers. */
  headers: DebPackage;
  /** `linux-source-<major.minor>`: the kernel source tarball the drivers' .c files come from. */
  source: DebPackage;
}

/**
 * The headers and source packages of `kernel`: `linux-image-6.12.117+deb12-amd64` 6.12.117-1~deb12u1
 * → `linux-headers-6.12.117+deb12-amd64` and `linux-source-6.12`, same version. The headers'
 * own dependencies (the -common headers and linux-kbuild) are read from the headers package.
 * Undefined for a name that is not a concrete Debian kernel package.
 */
export function kernelBuildPackages(kernel: DebPackage): KernelBuildPackages | undefined {
  const m = /^linux-image-((\d+)\.(\d+)\.\d+.*)$/.exec(kernel.name);
  if (!m) return undefined;
  // All three groups take part in every match.
  const release = m[1] as string;
  const series = `${m[2] as string}.${m[3] as string}`;
  return {
    headers: { name: `linux-headers-${release}`, version: kernel.version },
    source: { name: `linux-source-${series}`, version: kernel.version },
  };
}
