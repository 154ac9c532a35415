// The modules a full monitor is composed of, in setup order (spec §1 step 12).
import { block } from '../modules/block/index.js';
import { console } from '../modules/console/index.js';
import { net } from '../modules/net/index.js';
import type { Module } from './module.js';

export function defaultModules(): Module[] {
  return [console(), block(), net()];
}
