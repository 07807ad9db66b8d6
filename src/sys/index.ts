// SPDX-License-Identifier: Apache-2.0
/**
 * The native-call layer: Unix sockets with fd passing, shared memory, eventfd, poll/epoll,
 * fallocate. Re-exports only; libc.ts (the koffi declarations) stays private.
 */
export { SysError, SysEofError, SysUsageError, errnoName, errnoDescription, errnoNumber, isErrno } from './errors.js';
export { close, closeQuiet, closeAllQuiet, dup, isOpenFd, listOpenFds, setNonBlocking, isNonBlocking, fdTarget, isEventFd } from './fd.js';
export { listenUnix, acceptUnix, connectUnix, socketPair, shutdown, unlinkQuiet, peerCredentials, SHUT_RD, SHUT_WR, SHUT_RDWR } from './socket.js';
export { recvMsg, tryRecvMsg, recvExact, sendMsg, trySendMsg, MAX_FDS_PER_MESSAGE } from './message.js';
export type { RecvResult } from './message.js';
export { memfdCreate, mmapShared, munmap, mapViews, ftruncate, fdFileSize, getSeals, sealAgainstShrink, MAX_VIEW_BYTES, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE } from './memory.js';
export type { Mapping, FdFileSize } from './memory.js';
export { fallocate, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from './file.js';
export { eventfdCreate, eventfdRead, eventfdWrite, eventfdSignal, eventfdSaturate, EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE } from './eventfd.js';
export { poll, Poller, POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDHUP } from './poll.js';
export type { PollEntry } from './poll.js';
export { Epoll, EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP, EPOLLET } from './epoll.js';
export { readSome, writeSome, acceptNonBlocking, connectUnixNonBlocking } from './stream.js';
export { openTap, type TapDevice } from './tap.js';
/** The file calls of a virtio-fs host (openat2 RESOLVE_BENEATH, O_PATH, statx, ...), as one object. */
export * as fsSyscalls from './fs.js';
export { openCanRaw, decodeRawCanFrame, encodeRawCanFrame, CAN_MTU, CANFD_MTU, type CanRawSocket, type RawCanFrame } from './can.js';
