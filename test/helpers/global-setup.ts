// Builds the C test unikernels once before any test file runs, and says loudly
// when this machine cannot run the KVM tests (they skip themselves then).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { kvmUsable } from './kvm.js';

function banner(): void {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! /dev/kvm is not usable on this machine: every KVM test is SKIPPED.\n!! Only the unit tests ran. This is NOT a pass of the KVM suite.\n${bar}\n\n`);
}

/** Returns the teardown, which repeats the warning after the results. */
export default function setup(): (() => void) | undefined {
  const root = join(import.meta.dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'test', 'guests', 'build.mjs')], { stdio: 'inherit' });
  if (kvmUsable()) return undefined;
  banner();
  return banner;
}
