// SPDX-License-Identifier: Apache-2.0
/** Kernel series → packages, concrete vs meta names, the build packages of one kernel, and the offline fallback's choice. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelDependency, parseStanza } from './apt.js';
import { cachedKernelFits } from './build.js';
import { DEFAULT_GUEST_KERNEL, isConcreteKernelPackage, isGuestKernel, kernelBuildPackages, kernelMetaPackage } from './kernels.js';

test('series: 6.12 is the default; each series names its Debian meta package', () => {
  assert.equal(DEFAULT_GUEST_KERNEL, '6.12');
  assert.equal(kernelMetaPackage('6.12'), 'linux-image-6.12-amd64');
  assert.equal(kernelMetaPackage('6.12-rt'), 'linux-image-6.12-rt-amd64');
  assert.equal(kernelMetaPackage('6.1'), 'linux-image-amd64');
  assert.ok(isGuestKernel('6.1') && !isGuestKernel('6.2') && !isGuestKernel(6.12));
});

test('concrete kernel packages name one build; meta packages a series', () => {
  assert.ok(isConcreteKernelPackage('linux-image-6.12.117+deb12-amd64'));
  assert.ok(isConcreteKernelPackage('linux-image-6.1.0-56-amd64'));
  assert.ok(!isConcreteKernelPackage('linux-image-6.12-amd64'));
  assert.ok(!isConcreteKernelPackage('linux-image-amd64'));
});

test('kernelDependency: the 6.12 meta package resolves to its concrete kernel, not to itself', () => {
  const stanza = parseStanza('Package: linux-image-6.12-amd64\nVersion: 6.12.117-1~deb12u1\nDepends: linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1)\n');
  assert.deepEqual(kernelDependency(stanza), { name: 'linux-image-6.12.117+deb12-amd64', version: '6.12.117-1~deb12u1' });
});

test('kernelBuildPackages: headers and source at exactly the kernel version', () => {
  assert.deepEqual(kernelBuildPackages({ name: 'linux-image-6.12.117+deb12-rt-amd64', version: '6.12.117-1~deb12u1' }), {
    headers: { name: 'linux-headers-6.12.117+deb12-rt-amd64', version: '6.12.117-1~deb12u1' },
    source: { name: 'linux-source-6.12', version: '6.12.117-1~deb12u1' },
  });
  assert.equal(kernelBuildPackages({ name: 'linux-image-amd64', version: '1' }), undefined);
});

test('cachedKernelFits: offline, a meta package takes only a cached kernel of its series and flavour', () => {
  assert.ok(cachedKernelFits('linux-image-6.12-amd64', 'linux-image-6.12.117+deb12-amd64'));
  assert.ok(!cachedKernelFits('linux-image-6.12-amd64', 'linux-image-6.12.117+deb12-rt-amd64'));
  assert.ok(cachedKernelFits('linux-image-6.12-rt-amd64', 'linux-image-6.12.117+deb12-rt-amd64'));
  assert.ok(!cachedKernelFits('linux-image-6.12-amd64', 'linux-image-6.1.0-56-amd64'));
  assert.ok(cachedKernelFits('linux-image-amd64', 'linux-image-6.1.0-56-amd64'));
  assert.ok(!cachedKernelFits('linux-image-amd64', 'linux-image-6.12.117+deb12-amd64'));
});
