// SPDX-License-Identifier: Apache-2.0
/** The platform manifest: schema, loading with positions, checks, run layout. Re-exports only. */
export {
  BUILTIN_MIN_MEMORY_MIB,
  DEFAULT_SWITCH_MTU,
  DEFAULT_VM_MEMORY_MIB,
  MANIFEST_DEVICE_KINDS,
  PlatformManifestSchema,
  type ManifestDevice,
  type ManifestDeviceKind,
  type ManifestSwitch,
  type ManifestVm,
  type PlatformManifest,
  type PlatformManifestInput,
} from './schema.js';
export { derivedMac, formatPath, splitCmdline, type BootModel, type DeviceModel, type PlatformModel, type SwitchModel, type VmModel } from './checks.js';
export { loadManifestFile, parseManifest, readManifestText, type ManifestLoadResult, type ParseManifestOptions } from './load.js';
export {
  MAX_SOCKET_PATH_BYTES,
  RECONNECT_SECONDS,
  commandLine,
  defaultRunDir,
  needsBuiltinImage,
  planPlatform,
  type BackendPlan,
  type GuestImageRef,
  type PlanOptions,
  type PlatformPlan,
  type PortPlan,
  type VmPlan,
} from './plan.js';
export { MANIFEST_SCHEMA_ID, MANIFEST_SCHEMA_PATH, manifestJsonSchema, manifestJsonSchemaText } from './json-schema.js';
export { diskBytes, formatBytes, memoryMiB } from './units.js';
