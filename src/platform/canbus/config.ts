// SPDX-License-Identifier: Apache-2.0
/**
 * What one AVP CAN bus serves: its bit rates, its nodes (each a Unix socket that one peer joins
 * through: a guest's virtio console port, a virtio-can back-end), a host socket any number of
 * host programs join, a candump log, a replayed candump log, a bridge to a host SocketCAN
 * interface. `avp canbus` builds it from flags, `avp run` from the manifest's `buses:`.
 *
 * Owns: the `CanBusConfig` shape and `checkBusConfig` (the rules across fields: unique names and
 * sockets). Does not own: flag or manifest syntax (cli/commands/canbus.ts, manifest/), running it
 * (server.ts).
 */
import type { CanFilter } from '../../can/index.js';
import { CanFormatError } from '../../can/index.js';

export interface CanNodeConfig {
  /** Unique on the bus. */
  name: string;
  /** The Unix socket the bus listens on for this node (one peer at a time). */
  socket: string;
  receive?: readonly CanFilter[];
  send?: readonly CanFilter[];
  /** Frames per second (and bucket size). */
  rate?: { framesPerSecond: number; burst?: number };
}

export interface CanReplayConfig {
  /** A candump log file. */
  file: string;
  /** Start again from the top after the last frame. */
  loop: boolean;
  /** 'all-open': once every node in `nodes` has joined (slcan `O`); 'now': at once. */
  start: 'all-open' | 'now';
  /** Only lines of this interface name (default: every line). */
  ifname?: string;
  /** The replay node's name (default `replay`). */
  name?: string;
}

export interface CanBusConfig {
  name: string;
  bitrate: number;
  dataBitrate?: number;
  nodes: CanNodeConfig[];
  /** A socket where any number of host programs join (each connection is a node, open at once). */
  hostSocket?: string;
  /** candump log of every frame on the bus. */
  log?: string;
  replay?: CanReplayConfig;
  /** Host SocketCAN interface to bridge (skipped with a warning when the host has none). */
  socketcan?: string;
}

/** @throws CanFormatError CAN_BAD_OPTION naming the duplicate. */
export function checkBusConfig(c: CanBusConfig): void {
  const names = new Set<string>();
  const sockets = new Set<string>();
  const reserved = [c.replay?.name ?? (c.replay === undefined ? undefined : 'replay'), c.socketcan === undefined ? undefined : `socketcan-${c.socketcan}`];
  for (const n of c.nodes) {
    if (names.has(n.name) || reserved.includes(n.name) || n.name.startsWith('host')) throw new CanFormatError('CAN_BAD_OPTION', `bus ${c.name}: node name ${n.name} is used twice or reserved (host*, the replay and socketcan nodes)`);
    names.add(n.name);
    if (sockets.has(n.socket) || n.socket === c.hostSocket) throw new CanFormatError('CAN_BAD_OPTION', `bus ${c.name}: socket ${n.socket} is given twice`);
    sockets.add(n.socket);
  }
}
