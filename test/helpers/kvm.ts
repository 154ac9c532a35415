// Whether this machine can run the KVM tests: /dev/kvm must be a character
// device this process may open read/write. No vitest import here: the global
// setup uses it too.
import { accessSync, constants, statSync } from 'node:fs';

export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return statSync('/dev/kvm').isCharacterDevice();
  } catch {
    return false;
  }
}
