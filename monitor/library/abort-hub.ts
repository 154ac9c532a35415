// One 'abort' listener per AbortSignal, however many VMs share it (a fleet
// stopped by one Ctrl-C): a listener per VM would trip Node's
// MaxListenersExceededWarning at eleven VMs, as a 'drain' listener per VM
// would on a shared console stream (console-flow.ts).
const hubs = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls fn once when signal aborts; returns the way to stop waiting for it. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let fns = hubs.get(signal);
  if (!fns) {
    const set = new Set<() => void>();
    fns = set;
    hubs.set(signal, set);
    signal.addEventListener('abort', () => {
      hubs.delete(signal);
      for (const f of [...set]) f();
    }, { once: true });
  }
  fns.add(fn);
  const mine = fns;
  return () => {
    mine.delete(fn);
  };
}
