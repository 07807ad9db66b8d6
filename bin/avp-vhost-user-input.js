#!/usr/bin/env node
// vhost-user back-end program for QEMU/libvirt (share/qemu/vhost-user/50-avp-input.json):
// the same as `avp serve input`, under a name a JSON descriptor can point at.
// Generated from the device registry by scripts/gen-packaging.mjs; do not edit.
import { runServe } from './serve-wrapper.js';
await runServe('input');
