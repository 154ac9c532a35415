// The PortEvents of a fake machine without a kick port (no net ring): the
// ring module never gets past `available`, so the rest must never be called.
import type { PortEvents } from '../../monitor/backend/backend.js';

export const NO_PORT_EVENTS: PortEvents = {
  available: false,
  steps: { create: 'none', attach: 'none' },
  createKick() {
    throw new Error('this fake machine has no kick port');
  },
  attach() {
    throw new Error('this fake machine has no kick port');
  },
  detach() {},
  closeKick() {},
};
