// SPDX-License-Identifier: Apache-2.0
/**
 * The FUSE session's two tables: nodes (FUSE nodeid → host node, with the kernel's lookup count)
 * and open file handles (FUSE fh → host file). Both are bounded; ids are never reused within a
 * session, so a stale id from the guest can only miss, never hit another file.
 *
 * Owns: the lookup-count rules of fuse.h ("the lookup count is incremented by every reply with a
 * fuse_entry_out carrying a nonzero nodeid; FORGET subtracts nlookup; at zero the node is
 * released"), deduplication of nodes by (dev, ino) so that one inode has one nodeid, and the caps.
 * Does not own: host operations (host.ts) or protocol framing (session.ts).
 */
import type { FsHost, HostFile, HostNode } from './host.js';
import { FUSE_ROOT_ID } from './spec.js';

export interface Node {
  readonly id: bigint;
  readonly host: HostNode;
  readonly key: string;
  /** The file type bits of st_mode when the node was looked up (types never change). */
  readonly type: number;
  lookups: bigint;
}

export interface Handle {
  readonly id: bigint;
  readonly file: HostFile;
  readonly node: Node;
  readonly dir: boolean;
}

export class NodeTable {
  readonly #byId = new Map<bigint, Node>();
  readonly #byKey = new Map<string, Node>();
  #next = FUSE_ROOT_ID + 1n;

  constructor(
    readonly host: FsHost,
    readonly max: number,
    rootKey: string,
    rootType: number,
  ) {
    const root: Node = { id: FUSE_ROOT_ID, host: host.root, key: rootKey, type: rootType, lookups: 1n };
    this.#byId.set(root.id, root);
    this.#byKey.set(rootKey, root);
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: bigint): Node | undefined {
    return this.#byId.get(id);
  }

  /**
   * Records one lookup of the host node `host` with identity `key`: an existing node for the same
   * inode gets its count raised and `host` is released (the table keeps the first handle).
   * Returns undefined (and releases `host`) when the table is full.
   */
  add(host: HostNode, key: string, type: number): Node | undefined {
    const known = this.#byKey.get(key);
    if (known !== undefined) {
      if (known.host !== host) this.host.release(host);
      known.lookups++;
      return known;
    }
    if (this.#byId.size >= this.max) {
      this.host.release(host);
      return undefined;
    }
    const node: Node = { id: this.#next++, host, key, type, lookups: 1n };
    this.#byId.set(node.id, node);
    this.#byKey.set(key, node);
    return node;
  }

  /** FORGET: drops `n` lookups (capped at what the node has); releases it at zero. Root stays. */
  forget(id: bigint, n: bigint): void {
    const node = this.#byId.get(id);
    if (node === undefined || id === FUSE_ROOT_ID) return;
    node.lookups = n >= node.lookups ? 0n : node.lookups - n;
    if (node.lookups > 0n) return;
    this.#byId.delete(id);
    this.#byKey.delete(node.key);
    this.host.release(node.host);
  }

  /** Releases every node but the root (DESTROY, reset). */
  clear(): void {
    for (const node of this.#byId.values()) {
      if (node.id !== FUSE_ROOT_ID) this.host.release(node.host);
    }
    const root = this.#byId.get(FUSE_ROOT_ID);
    this.#byId.clear();
    this.#byKey.clear();
    if (root !== undefined) {
      this.#byId.set(root.id, root);
      this.#byKey.set(root.key, root);
    }
  }
}

export class HandleTable {
  readonly #byId = new Map<bigint, Handle>();
  #next = 1n;

  constructor(
    readonly host: FsHost,
    readonly max: number,
  ) {}

  get size(): number {
    return this.#byId.size;
  }

  get full(): boolean {
    return this.#byId.size >= this.max;
  }

  add(file: HostFile, node: Node, dir: boolean): Handle {
    const h: Handle = { id: this.#next++, file, node, dir };
    this.#byId.set(h.id, h);
    return h;
  }

  get(id: bigint, dir: boolean): Handle | undefined {
    const h = this.#byId.get(id);
    return h === undefined || h.dir !== dir ? undefined : h;
  }

  /** Closes and forgets handle `id`; false when there is none of that kind. */
  release(id: bigint, dir: boolean): boolean {
    const h = this.get(id, dir);
    if (h === undefined) return false;
    this.#byId.delete(id);
    this.host.close(h.file);
    return true;
  }

  clear(): void {
    for (const h of this.#byId.values()) this.host.close(h.file);
    this.#byId.clear();
  }
}

/** The identity of an inode: one node per (device, inode number). */
export function inodeKey(dev: bigint, ino: bigint): string {
  return `${dev}:${ino}`;
}
