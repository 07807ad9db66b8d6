// The layer graph of DESIGN.md, as data: each layer lists the layers it may import.
// Used by eslint.config.js (import-boundary rule) and by its test (src/lint/boundaries.test.ts).
export const LAYERS = {
  spec: [],
  // CAN (ISO 11898) frames, formats and the bus model: pure, like spec; devices and the platform use it.
  can: [],
  memory: ['spec'],
  queue: ['spec', 'memory'],
  device: ['spec', 'memory', 'queue'],
  devices: ['spec', 'memory', 'queue', 'device', 'can'],
  sys: [],
  'vhost-user': ['spec', 'memory', 'queue', 'device', 'sys'],
  conformance: ['spec', 'memory', 'queue', 'device', 'devices', 'vhost-user', 'sys', 'can'],
  platform: ['spec', 'memory', 'queue', 'device', 'devices', 'vhost-user', 'sys', 'can'],
  // The dashboard (avp run --ui, avp ui): a web page over a run's control interface.
  ui: ['devices', 'platform'],
  cli: ['spec', 'memory', 'queue', 'device', 'devices', 'vhost-user', 'sys', 'conformance', 'platform', 'bench', 'ui', 'can'],
  bench: ['spec', 'memory', 'queue', 'device', 'devices', 'vhost-user', 'sys', 'conformance', 'platform', 'can'],
};

/** no-restricted-imports patterns that forbid every layer `layer` may not import. */
export function forbiddenLayerPatterns(layer) {
  const allowed = new Set([layer, ...LAYERS[layer]]);
  return Object.keys(LAYERS)
    .filter((other) => !allowed.has(other))
    .map((other) => ({
      // Matches relative imports that pass through the other layer's top folder, e.g.
      // '../../vhost-user/backend.js' from src/devices/rng/model.ts. Anchored on '../' so that a
      // sibling file or folder of the same name inside a layer (devices/blk/queue.ts) is not hit.
      regex: `^(\\.\\./)+${other}(/|$)`,
      message: `layer '${layer}' must not import layer '${other}' (DESIGN.md: imports point down only)`,
    }));
}
