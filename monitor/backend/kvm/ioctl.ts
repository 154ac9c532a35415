// How a failed KVM ioctl is reported: the reference's fatal wording, for the
// backend (backend.ts) and the vCPU (vcpu.ts) alike.
import { HostError, withErrno } from '../../errors.js';

/** "KVM: ioctl (NAME) failed: strerror" */
export function ioctlFailed(name: string, e: unknown): HostError {
  return new HostError(withErrno(`KVM: ioctl (${name}) failed`, e), { cause: e });
}

/** Runs one ioctl, turning its failure into the reference's fatal message. */
export function hostIoctl<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioctlFailed(name, e);
  }
}
