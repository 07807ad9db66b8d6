// SPDX-License-Identifier: Apache-2.0
/**
 * Session tests' front-end: a request goes through the real codec to a `BackendSession` and its
 * reply back through the codec, as on the socket but without one.
 */
import { decodeReply, decodeRequest, encodeRequest, vhostUserHeader, type BackendReply, type FrontendRequestInit } from '../messages.js';
import type { BackendSession } from '../session.js';

/** Encodes `init`, has `session` handle the decoded request, and decodes its reply (null: none). */
export function sendThroughCodec(session: Pick<BackendSession, 'handle'>, init: FrontendRequestInit): BackendReply | null {
  const msg = encodeRequest(init);
  const header = vhostUserHeader.decode(new DataView(msg.bytes.buffer), 0);
  const reply = session.handle(decodeRequest(header, msg.bytes.subarray(12), msg.fds));
  if (reply === null) return null;
  return decodeReply(vhostUserHeader.decode(new DataView(reply.bytes.buffer), 0), reply.bytes.subarray(12), reply.fds);
}
