#!/usr/bin/env node
// vhost-user back-end program for QEMU/libvirt (share/qemu/vhost-user/50-avp-blk.json):
// the same as `avp serve blk`, under a name a JSON descriptor can point at.
import { runServe } from './serve-wrapper.js';
await runServe('blk');
