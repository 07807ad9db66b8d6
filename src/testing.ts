// SPDX-License-Identifier: Apache-2.0
/**
 * `avp/testing`: fakes and fixtures for tests of AVP and of code built on it: flat guest memory,
 * a guest allocator, a driver-side queue pair, the in-process device harness, fake hosts.
 * Re-exports only.
 */
export { FlatGuestMemory } from './memory/guest-memory.js';
export { GuestAllocator } from './memory/allocator.js';
export { DriverQueue } from './queue/split-driver.js';
export { createQueuePair, type QueuePair, type QueuePairOptions } from './queue/testing.js';
export { DeviceHarness, type HarnessOptions } from './device/harness.js';
export { HarnessDriver, type HarnessDriverOptions } from './device/testing.js';
export { FakeEntropySource } from './devices/rng/testing.js';
export { MemoryBlockHost, type MemoryBlockHostOptions, type BlockHostCall, type BlockHostOp } from './devices/blk/testing.js';
export { BlkDriver } from './devices/blk/testing.js';
export { FakeUplink, SwitchBed, PortDriver } from './devices/net/testing.js';
export { FakeUnixStreams, FakeSocket, VsockDriver, pump as pumpFakeSockets } from './devices/vsock/testing.js';
