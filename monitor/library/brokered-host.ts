// The worker's side of broker.ts: a HostIo whose calls that open host
// resources go to the embedding program's thread, synchronously, and whose
// other calls (reads, writes, block I/O, closing) stay on this thread. Used
// for every VM a confined worker builds.
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { HostIo } from '../backend/host.js';
import { HostError } from '../errors.js';
import type { HostReply, HostRequest } from './broker.js';

/** How long a build waits for the embedding program's thread to answer one call. */
const ANSWER_TIMEOUT_MS = 30_000;

/** Where requests go and answers come back: flag[0] is set to 1 once the answer is posted to `replies`. */
export interface HostChannel {
  readonly replies: MessagePort;
  readonly flag: Int32Array;
}

export function brokeredHost(local: HostIo, channel: HostChannel, send: (r: HostRequest) => void): HostIo {
  const ask = (r: HostRequest): number | string | boolean | undefined => {
    Atomics.store(channel.flag, 0, 0);
    send(r);
    if (Atomics.wait(channel.flag, 0, 0, ANSWER_TIMEOUT_MS) === 'timed-out') {
      throw new HostError(`${r.op}: the embedding program's thread did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`);
    }
    const got = receiveMessageOnPort(channel.replies);
    if (!got) throw new HostError(`${r.op}: no answer from the embedding program's thread`);
    const reply = got.message as HostReply;
    if (reply.ok) return reply.value;
    throw Object.assign(new Error(reply.error.message), reply.error);
  };
  return {
    ...local,
    openFile: (path, mode) => ask({ op: 'openFile', path, mode }) as number,
    openTap: (name) => ask({ op: 'openTap', name }) as number,
    mtu: (iface) => ask({ op: 'mtu', iface }) as number,
    disableOffloads: (iface) => ask({ op: 'disableOffloads', iface }) as boolean,
    tapName: (fd) => ask({ op: 'tapName', fd }) as string,
    adopt: (fd) => {
      ask({ op: 'adopt', fd });
    },
  };
}
