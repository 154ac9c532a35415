// The socket thread of the gdb stub: owns the listening socket and the one
// connection, so that they keep working while the vCPU's thread is inside
// KVM_RUN or blocked serving commands. It frames and acknowledges packets
// (packet.ts), retransmits replies gdb NAKs, passes each good request to the
// vCPU thread (channel.ts), and turns a Ctrl-C byte into an interrupt of the
// running vCPU (Platform.interrupt works from any thread). It never decides
// anything about the protocol's meaning.
import { createServer, type Server, type Socket } from 'node:net';
import { workerData } from 'node:worker_threads';
import { platform } from '../../monitor/backend/index.js';
import { MAX_WAITING_PACKETS, Slot, type SocketWorkerData, type ToSocket, type ToVcpu } from './channel.js';
import { frame, PacketReader } from './packet.js';

const data = workerData as SocketWorkerData;
// Loaded now, while the monitor is still being set up: loading the addon
// later (on the first Ctrl-C) would stat, access and open files, which the
// sandbox forbids once the guest runs (monitor/sandbox/policy.ts).
const plat = platform();
const shared = new Int32Array(data.shared);
const channel = data.channel;
/** Warnings about bad packets before the rest are counted silently. */
const MAX_WARNINGS = 10;
/** Times one reply is sent again on NAKs before the stub stops retrying it. */
const MAX_RETRIES = 25;
const BUF_SHOWN = 64;

let server: Server | null = null;
let conn: Socket | null = null;
let ackMode = true;
let unacked: Uint8Array | null = null;
let retries = 0;
let warnings = 0;
let posted = 0;
let closedSent = false;
let resumeTimer: ReturnType<typeof setInterval> | null = null;
const reader = new PacketReader();

function post(m: ToVcpu): void {
  channel.postMessage(m);
  Atomics.add(shared, Slot.DOORBELL, 1);
  Atomics.notify(shared, Slot.DOORBELL);
}

function warn(line: string): void {
  if (++warnings <= MAX_WARNINGS) post({ t: 'warn', line });
  else if (warnings === MAX_WARNINGS + 1) post({ t: 'warn', line: 'GDB: further bad packets are not reported' });
}

/** Kicks the vCPU out of the guest if it is in it (the vCPU thread checks BREAK itself when it resumes). */
function interruptIfRunning(): void {
  if (Atomics.load(shared, Slot.RUNNING) === 1) plat.interrupt(data.vcpu);
}

function connectionEnded(): void {
  if (closedSent) return;
  closedSent = true;
  post({ t: 'closed' });
  interruptIfRunning();
}

function write(bytes: Uint8Array, done?: () => void): void {
  if (!conn || conn.destroyed) {
    done?.();
    return;
  }
  conn.write(bytes, () => done?.());
}

/** Stops reading the connection while the vCPU thread has many packets to take. */
function throttle(): void {
  if (!conn || resumeTimer || posted - Atomics.load(shared, Slot.CONSUMED) < MAX_WAITING_PACKETS) return;
  conn.pause();
  resumeTimer = setInterval(() => {
    if (posted - Atomics.load(shared, Slot.CONSUMED) >= MAX_WAITING_PACKETS / 2) return;
    if (resumeTimer) clearInterval(resumeTimer);
    resumeTimer = null;
    conn?.resume();
  }, 10);
}

function onBytes(chunk: Buffer): void {
  for (const e of reader.feed(chunk)) {
    switch (e.kind) {
      case 'ack':
        unacked = null;
        break;
      case 'nak':
        if (unacked && retries++ < MAX_RETRIES) write(unacked);
        break;
      case 'interrupt':
        Atomics.store(shared, Slot.BREAK, posted + 1);
        interruptIfRunning();
        break;
      case 'packet':
        if (ackMode) write(Uint8Array.of(0x2b));
        unacked = null; // a new request acknowledges the last reply
        posted++;
        post({ t: 'packet', data: e.payload });
        throttle();
        break;
      case 'bad': {
        if (ackMode) write(Uint8Array.of(0x2d));
        const buf = e.payload.length > BUF_SHOWN ? `${e.payload.slice(0, BUF_SHOWN)}...` : e.payload;
        if (e.reason === 'checksum') {
          warn(`Failed checksum from GDB. My count = 0x${e.computed.toString(16)}, sent=0x${e.sent.toString(16)}. buf=${buf}`);
        } else {
          warn(`GDB: ${e.reason === 'too-long' ? 'packet longer than the packet size' : 'malformed checksum'} from GDB. buf=${buf}`);
        }
        break;
      }
    }
  }
}

function accept(socket: Socket): void {
  if (conn) {
    socket.destroy(); // one debugger at a time; the listener is closing
    return;
  }
  conn = socket;
  socket.setNoDelay(true);
  server?.close(); // later connections are refused, as the reference's
  server = null;
  const peer = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  post({ t: 'connected', peer });
  socket.on('data', onBytes);
  socket.on('error', () => connectionEnded());
  socket.on('close', () => connectionEnded());
}

function shutdown(): void {
  if (resumeTimer) clearInterval(resumeTimer);
  server?.close();
  conn?.destroy();
  channel.close();
}

channel.on('message', (m: ToSocket) => {
  switch (m.t) {
    case 'send': {
      const bytes = frame(m.data);
      write(bytes);
      if (ackMode) {
        unacked = bytes;
        retries = 0;
      }
      if (m.noAckAfter) {
        ackMode = false;
        unacked = null;
      }
      break;
    }
    case 'final': {
      const finish = () => {
        closedSent = true; // the stub ended the session: not a lost connection
        conn?.end();
        post({ t: 'flushed' });
      };
      if (m.data !== null && conn && !conn.destroyed) write(frame(m.data), finish);
      else finish();
      break;
    }
    case 'shutdown':
      shutdown();
      break;
  }
});

process.on('uncaughtException', (e) => {
  post({ t: 'warn', line: `GDB: socket thread failed: ${e instanceof Error ? e.message : String(e)}` });
  connectionEnded();
  shutdown();
});

server = createServer({ noDelay: true }, accept);
server.maxConnections = 1;
server.once('error', (e: NodeJS.ErrnoException) => {
  post({ t: 'listen-failed', message: e.message, errno: typeof e.errno === 'number' ? e.errno : 0 });
  shutdown();
});
server.listen({ host: data.host, port: data.port, backlog: 1, exclusive: true }, () => {
  const a = server?.address();
  if (a && typeof a === 'object') post({ t: 'listening', address: a.address, port: a.port });
});
