// The monitor runs as root with a guest's memory mapped: nothing may open a
// debugging port into it. Node answers SIGUSR1 by starting its inspector
// (whoever reaches that port runs code in this process) and ignores SIGPIPE;
// the reference tender dies of both, and of SIGHUP, SIGQUIT, SIGUSR2 and
// SIGALRM (docs/abi.md §14.1: only SIGINT and SIGTERM are caught); the
// platform's signals.restoreDefaults() gives them that. bin/ukvm-ts and
// generated monitors start node without NODE_OPTIONS (their #! line), so no
// --inspect reaches node from the environment; a node started with one by
// hand is refused here. Only the process-wide CLI does this: the library
// leaves the embedding program's signals alone.
import inspector from 'node:inspector';
import { HostError } from '../errors.js';

/** The #! line of every executable ukvm-ts writes or ships (GNU env ≥ 8.30). */
export const SHEBANG = '#!/usr/bin/env -S -u NODE_OPTIONS node';

/**
 * Throws (after closing it) if a Node inspector is listening: started by
 * --inspect given to node by hand, or by a SIGUSR1 that came during Node's
 * own start, before the signals were restored. Checked at start and again
 * right before the guest runs.
 */
export function refuseInspector(): void {
  if (inspector.url() === undefined) return;
  inspector.close();
  throw new HostError('refusing to run with a Node.js inspector open (--inspect or SIGUSR1): it lets whoever reaches its port run code in the monitor');
}
