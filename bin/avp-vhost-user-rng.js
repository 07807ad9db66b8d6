#!/usr/bin/env node
// vhost-user back-end program for QEMU/libvirt (share/qemu/vhost-user/50-avp-rng.json):
// the same as `avp serve rng`, under a name a JSON descriptor can point at.
import { runServe } from './serve-wrapper.js';
await runServe('rng');
