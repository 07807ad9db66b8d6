// SPDX-License-Identifier: Apache-2.0
/**
 * Streaming framing for vhost-user (QEMU `docs/interop/vhost-user.rst`, "Message Specification"):
 * chunks of bytes, with the fds received alongside, in; whole, validated, typed messages out.
 * A state machine in the style of undici's WebSocket `ByteParser` and pg-protocol's parser:
 * header (12 bytes) → payload (`size` bytes) → decode, for any split of the stream into chunks.
 *
 * Owns: message boundaries; the payload cap, checked from the header before anything is buffered;
 * which message the fds of a chunk belong to; closing every fd no emitted message owns.
 * Does not own: sockets and `recvmsg` (`sys/`), payload layouts and per-type rules
 * (`messages.ts`), and the policy for errors (reply, log, disconnect: the connection's job).
 *
 * fd attachment. All fds of a vhost-user message are sent with its header, in one `sendmsg`.
 * Linux's `unix_stream_read_generic` ends a read right after the segment that carried fds, so a
 * chunk that arrives with fds may hold earlier fd-less messages first, but no header after the one
 * the fds belong to. Hence the rule: the fds of a chunk belong to the LAST message whose header
 * begins in that chunk. fds that arrive with a chunk in which no header begins cannot be matched
 * to a message; they are closed and the message in progress fails with UNEXPECTED_FDS.
 *
 * Errors are returned as items, never thrown, so messages before an error in the same chunk are
 * not lost: a per-message error (`error.fatal === false`) takes the place of its message and
 * parsing goes on with the next header; a fatal error is the last item, after which the parser
 * refuses input (see `errors.ts` for which codes are which).
 *
 * Memory: the parser never keeps a reference to a caller's chunk; it holds at most one message in
 * progress, 12 header bytes plus a payload buffer of `size <= VHOST_USER_MAX_PAYLOAD` bytes that is
 * allocated only after the header passed every check (`bufferedBytes`).
 */
import { VhostUserProtocolError } from './errors.js';
import {
  type BackendReply,
  checkReplyHeader,
  checkRequestHeader,
  decodeReply,
  decodeRequest,
  type FrontendRequest,
  vhostUserHeader,
} from './messages.js';
import { frontendRequestName, VHOST_USER_HDR_SIZE, VHOST_USER_MAX_FDS, type VhostUserHeader } from './protocol.js';

/** One result of `push`: a decoded message, or the error that took the place of one. */
export type ParseItem<M> =
  | { readonly kind: 'message'; readonly message: M }
  | { readonly kind: 'error'; readonly error: VhostUserProtocolError };

/** How a parser judges headers and decodes whole messages of one direction. */
export interface FrameDecoder<M> {
  /** Header-only checks; an error skips the payload (or, when fatal, stops the parser). */
  checkHeader(header: VhostUserHeader): VhostUserProtocolError | null;
  /**
   * Decodes a message and names the fds it keeps; the parser closes the others.
   * @throws VhostUserProtocolError (the parser then closes all of `fds`).
   */
  decode(header: VhostUserHeader, payload: Uint8Array, fds: readonly number[]): { readonly message: M; readonly fds: readonly number[] };
}

export interface ParserOptions {
  /**
   * Closes an fd the parser rejects or that no emitted message owns. Called synchronously inside
   * `push`/`end`; exceptions it throws propagate to their caller.
   */
  readonly closeFd: (fd: number) => void;
}

/** A message being assembled. */
interface Frame {
  readonly headerBytes: Uint8Array;
  headerFill: number;
  header: VhostUserHeader | null;
  /** Allocated with `size` bytes once the header passed its checks; stays empty when skipping. */
  payload: Uint8Array;
  payloadFill: number;
  /** Payload bytes still to discard after an early per-message error. */
  skip: number;
  /** fds attached to this message, owned by the parser until the message is emitted. */
  readonly fds: number[];
  /** Early error from the header checks; the payload is skipped and this error is emitted. */
  error: VhostUserProtocolError | null;
  /** Set when fds arrived that cannot belong to this message; emitted as UNEXPECTED_FDS. */
  fdProblem: string | null;
}

const NO_PAYLOAD = new Uint8Array(0);

function newFrame(): Frame {
  return {
    headerBytes: new Uint8Array(VHOST_USER_HDR_SIZE),
    headerFill: 0,
    header: null,
    payload: NO_PAYLOAD,
    payloadFill: 0,
    skip: 0,
    fds: [],
    error: null,
    fdProblem: null,
  };
}

function isComplete(frame: Frame): boolean {
  return frame.header !== null && frame.payloadFill === frame.payload.length && frame.skip === 0;
}

/** The framing state machine, generic over the direction's decoder. */
export class VhostUserFrameParser<M> {
  readonly #decoder: FrameDecoder<M>;
  readonly #closeFd: (fd: number) => void;
  #current: Frame | null = null;
  #failure: VhostUserProtocolError | null = null;

  constructor(decoder: FrameDecoder<M>, options: ParserOptions) {
    this.#decoder = decoder;
    this.#closeFd = options.closeFd;
  }

  /** Bytes held for the message in progress (at most 12 + `VHOST_USER_MAX_PAYLOAD`). */
  get bufferedBytes(): number {
    const f = this.#current;
    return f === null ? 0 : VHOST_USER_HDR_SIZE + f.payload.length;
  }

  /** fds held for the message in progress. */
  get heldFdCount(): number {
    return this.#current?.fds.length ?? 0;
  }

  /** The fatal error that stopped this parser, or null. */
  get failure(): VhostUserProtocolError | null {
    return this.#failure;
  }

  /**
   * Consumes one chunk and the fds received with it; returns, in stream order, one item per
   * message completed by this chunk, preceded by an error for fds that match no message and
   * followed by the fatal error if one occurred. After a fatal error every call closes its fds
   * and returns that error again.
   */
  push(chunk: Uint8Array, fds: readonly number[] = []): ParseItem<M>[] {
    if (this.#failure !== null) {
      this.#closeAll(fds);
      return [{ kind: 'error', error: this.#failure }];
    }
    const inProgress = this.#current;
    const completed: Array<{ frame: Frame; header: VhostUserHeader }> = [];
    let begun: Frame | null = null;
    let fatal: VhostUserProtocolError | null = null;
    let off = 0;
    while (off < chunk.length) {
      if (this.#current === null) {
        this.#current = newFrame();
        begun = this.#current;
      }
      const frame = this.#current;
      off = this.#feed(frame, chunk, off);
      if (frame.header === null) break; // the chunk ended inside the header
      if (frame.error?.fatal === true) {
        fatal = frame.error;
        // fds that came with an earlier chunk of this header: no message will own them.
        this.#closeAll(frame.fds.splice(0));
        this.#current = null;
        break;
      }
      if (isComplete(frame)) {
        completed.push({ frame, header: frame.header });
        this.#current = null;
      }
    }
    const items: ParseItem<M>[] = [];
    const stray = this.#attachFds(fds, begun ?? inProgress, begun !== null);
    if (stray !== null) items.push({ kind: 'error', error: stray });
    for (const { frame, header } of completed) items.push(this.#finish(frame, header));
    if (fatal !== null) {
      this.#failure = fatal;
      items.push({ kind: 'error', error: fatal });
    }
    return items;
  }

  /**
   * Signals the end of the stream. A message left incomplete becomes a fatal VHOST_USER_TRUNCATED
   * error and its fds are closed; otherwise returns nothing.
   */
  end(): ParseItem<M>[] {
    const f = this.#current;
    this.#current = null;
    if (this.#failure !== null || f === null) return [];
    this.#closeAll(f.fds);
    const where =
      f.header === null
        ? `after ${f.headerFill} of ${VHOST_USER_HDR_SIZE} header bytes`
        : `${frontendRequestName(f.header.request)}: after ${f.header.size - (f.payload.length - f.payloadFill) - f.skip} of ${f.header.size} payload bytes`;
    this.#failure = new VhostUserProtocolError('VHOST_USER_TRUNCATED', `the stream ended inside a message, ${where}`, f.header);
    return [{ kind: 'error', error: this.#failure }];
  }

  /** Copies as much of `chunk` from `off` as `frame` still needs; returns the new offset. */
  #feed(frame: Frame, chunk: Uint8Array, off: number): number {
    if (frame.header === null) {
      const n = Math.min(VHOST_USER_HDR_SIZE - frame.headerFill, chunk.length - off);
      frame.headerBytes.set(chunk.subarray(off, off + n), frame.headerFill);
      frame.headerFill += n;
      off += n;
      if (frame.headerFill < VHOST_USER_HDR_SIZE) return off;
      this.#onHeader(frame);
      if (frame.error?.fatal === true) return off;
    }
    // Exactly one of the two is non-zero: a payload being buffered, or one being skipped.
    const n = Math.min(frame.payload.length - frame.payloadFill, chunk.length - off);
    frame.payload.set(chunk.subarray(off, off + n), frame.payloadFill);
    frame.payloadFill += n;
    off += n;
    const skipped = Math.min(frame.skip, chunk.length - off);
    frame.skip -= skipped;
    return off + skipped;
  }

  /** Validates a complete header before anything of its payload is buffered. */
  #onHeader(frame: Frame): void {
    const header = vhostUserHeader.decode(new DataView(frame.headerBytes.buffer), 0);
    frame.header = header;
    const error = this.#decoder.checkHeader(header);
    if (error === null) {
      // `size` passed the payload cap in checkHeader, so this allocation is bounded.
      frame.payload = new Uint8Array(header.size);
    } else {
      frame.error = error;
      frame.skip = error.fatal ? 0 : header.size;
    }
  }

  /**
   * Gives the chunk's fds to `target` (the last message whose header began in the chunk, else the
   * message in progress). Returns an error for fds that match no message at all.
   */
  #attachFds(fds: readonly number[], target: Frame | null, headerBegan: boolean): VhostUserProtocolError | null {
    if (fds.length === 0) return null;
    let problem: string | null = null;
    if (fds.length > VHOST_USER_MAX_FDS) {
      problem = `${fds.length} fds arrived with one message, more than the ${VHOST_USER_MAX_FDS} accepted`;
    } else if (!headerBegan) {
      problem = 'fds arrived with bytes that start no message header (a message sends its fds with its header)';
    }
    if (target === null) {
      this.#closeAll(fds);
      return new VhostUserProtocolError('VHOST_USER_UNEXPECTED_FDS', `${fds.length} fd(s) arrived with no message to attach them to`);
    }
    if (problem !== null || target.error !== null || target.fdProblem !== null) {
      // The message will fail anyway (or is skipped): nothing will own these fds.
      this.#closeAll(fds);
      if (problem !== null && target.error === null) target.fdProblem ??= problem;
      return null;
    }
    target.fds.push(...fds);
    return null;
  }

  /** Turns a complete message into an item; closes every fd the item does not own. */
  #finish(frame: Frame, header: VhostUserHeader): ParseItem<M> {
    if (frame.error !== null) {
      this.#closeAll(frame.fds);
      return { kind: 'error', error: frame.error };
    }
    if (frame.fdProblem !== null) {
      this.#closeAll(frame.fds);
      const error = new VhostUserProtocolError(
        'VHOST_USER_UNEXPECTED_FDS',
        `${frontendRequestName(header.request)}: ${frame.fdProblem}`,
        header,
      );
      return { kind: 'error', error };
    }
    try {
      const { message, fds: held } = this.#decoder.decode(header, frame.payload, frame.fds);
      for (const fd of frame.fds) if (!held.includes(fd)) this.#closeFd(fd);
      return { kind: 'message', message };
    } catch (e: unknown) {
      this.#closeAll(frame.fds);
      if (e instanceof VhostUserProtocolError) return { kind: 'error', error: e };
      throw e; // a bug in a decoder, not a protocol error
    }
  }

  #closeAll(fds: readonly number[]): void {
    for (const fd of fds) this.#closeFd(fd);
  }
}

/** Back-end side: decodes what a front-end sends. */
export const REQUEST_DECODER: FrameDecoder<FrontendRequest> = {
  checkHeader: checkRequestHeader,
  decode(header, payload, fds) {
    const message = decodeRequest(header, payload, fds);
    return { message, fds: message.fds };
  },
};

/** Front-end side: decodes what a back-end answers. */
export const REPLY_DECODER: FrameDecoder<BackendReply> = {
  checkHeader: checkReplyHeader,
  decode(header, payload, fds) {
    const message = decodeReply(header, payload, fds);
    return { message, fds: message.fds };
  },
};

/** Parses the front-end → back-end stream (used by back-ends). */
export class VhostUserRequestParser extends VhostUserFrameParser<FrontendRequest> {
  constructor(options: ParserOptions) {
    super(REQUEST_DECODER, options);
  }
}

/** Parses the back-end → front-end reply stream (used by the conformance front-end). */
export class VhostUserReplyParser extends VhostUserFrameParser<BackendReply> {
  constructor(options: ParserOptions) {
    super(REPLY_DECODER, options);
  }
}
