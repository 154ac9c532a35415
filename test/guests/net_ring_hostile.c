/* net_ring_hostile: uses and misuses the shared net ring (docs/abi.md §13)
 * as the first command-line word asks. One NET_BASIC device "service".
 * Prints "mode: NAME" and "ring=0|1"; modes that need the ring exit 3 if it
 * is not offered. Modes the tender must end (exit 1, one line) print
 * "expect: ..." first and, if they survive, "survived" and exit 2.
 *
 * top = bi->mem_size = the ring's GPA.
 *   tail-jump       ent_tail += 2^31, kick            → Invalid net ring state
 *   read-outside    a NET_READ entry with data top+0x1000 (inside the ring), 1514
 *                                                     → Invalid guest access gpa=top+0x1000 sz=1514
 *   write-outside   a NET_WRITE entry with data top-16, 64 → gpa=top-16 sz=64
 *   read-text       a NET_READ entry into the guest's own text (host read-only)
 *                                                     → gpa=<text> sz=64
 *   write-huge      a NET_WRITE entry of 0xfffff000 bytes from 0x200000
 *                                                     → gpa=0x200000 sz=4294963200
 * Modes that must survive (exit 0):
 *   burst N         publishes 1023 NET_WRITE entries with one ent_tail store (the most
 *                   the guest may have outstanding), kicks, then N more through the
 *                   bindings' write (flow control), then one read; frames are 60 bytes,
 *                   ethertype 0x88b5, broadcast. Prints "burst: sent=M max_outstanding=K".
 *   garbage         1000 entries of pseudo-random operation, handle, len (< 2048) and
 *                   data inside guest memory; prints "garbage: reads=R commits=C" (C = R:
 *                   one commit per NET_READ entry, whatever its handle) and checks that
 *                   the host wrote nothing past the commit array.
 *   no-consume N    N NET_READ entries whose commits are never consumed (com_head stays 0):
 *                   the host wraps the commit array; prints "no-consume: com_tail=T".
 *   host-fields     overwrites ent_head, com_tail and needs_kick with garbage, then reads
 *                   through the bindings: the host keeps its own indices and rewrites them.
 *                   Prints "host-fields: ret=R ent_head=H com_tail=T".
 *   kick            OUT to port 0x600 (a kick with nothing to do) 1000 times, then a read.
 *                   Without the ring the first OUT ends the run (Invalid guest port access).
 *   idle            prints "idle", then POLLs (an hour at a time) and drops what comes
 *                   in (SIGTERM / stop() while the ring thread sleeps).
 *   spin            prints "spinning", then reads through the ring forever (the ring thread
 *                   never sleeps: SIGTERM / stop() while it spins).
 */
#include "hvt.h"
#include "ring.h"

HVT_MANIFEST(HVT_NET("service"));

static uint8_t frame[64] __attribute__((aligned(64)));
static uint8_t rx[2048] __attribute__((aligned(64)));
static uint64_t handle;

static void expect(const char *what) { hvt_printf("expect: %s\n", what); }

static void survived(void) {
  hvt_printf("survived\n");
  hvt_halt(2, 0);
}

static struct hvt_ring_entry *slot(uint32_t i) { return &hvt_net_ring->entries[i & HVT_RING_MASK]; }

/* Fills the next slot without publishing it. */
static void fill(uint32_t at, uint32_t op, uint64_t h, uint64_t data, uint32_t len) {
  struct hvt_ring_entry *e = slot(at);
  e->operation = op;
  e->handle = (uint32_t)h;
  e->data = data;
  e->len = len;
  e->id = at;
}

/* One entry, published and kicked as the bindings do; then wait until the host took it (or ended the run). */
static void submit_one(uint32_t op, uint64_t data, uint32_t len) {
  fill(hvt_net_ring->ent_tail, op, handle, data, len);
  hvt_ring_submit();
  uint64_t deadline = hvt_monotonic_ns() + 20000000000ull;
  while (hvt_net_ring->ent_head != hvt_net_ring->ent_tail && hvt_monotonic_ns() < deadline) hvt_cpu_relax();
}

static uint32_t rng = 12345;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[32];
  hvt_next_word(&cmdline, mode, sizeof mode);
  int64_t n = 0;
  if (*cmdline) hvt_parse_i64(cmdline, &n);
  int ring = hvt_ring_init(bi);
  hvt_printf("mode: %s\nring=%d\n", mode, ring);
  const uint64_t top = bi->mem_size;
  handle = (uint64_t)hvt_mft_find("service", HVT_MFT_NET_BASIC);
  hvt_touch(frame, sizeof frame);
  hvt_touch(rx, sizeof rx);
  memset(frame, 0xff, 6);
  memcpy(frame + 6, hvt_mft()->e[handle].u.net.mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;

  if (strcmp(mode, "kick") == 0) {
    for (int i = 0; i < 1000; i++) hvt_ring_kick();
    size_t got = 0;
    int r = hvt_s5_net_read(handle, rx, sizeof rx, &got);
    hvt_printf("kick: read=%d\n", r);
    return 0;
  }
  if (strcmp(mode, "idle") == 0) {
    hvt_printf("idle\n");
    for (;;) {
      /* Stray frames are read and dropped; between them the ring thread sleeps. */
      hvt_poll(3600000000000ull, 0);
      size_t got;
      while (hvt_s5_net_read(handle, rx, sizeof rx, &got) == HVT_OK) {}
    }
  }
  if (!ring) return 3;
  struct hvt_ring *r = hvt_net_ring;

  if (strcmp(mode, "tail-jump") == 0) {
    expect("Invalid net ring state");
    r->ent_tail += 0x80000000u;
    hvt_mb();
    hvt_ring_kick();
    uint64_t deadline = hvt_monotonic_ns() + 20000000000ull;
    while (hvt_monotonic_ns() < deadline) hvt_cpu_relax();
    survived();
  }
  if (strcmp(mode, "read-outside") == 0) {
    hvt_printf("expect: gpa=0x%lx sz=1514\n", top + 0x1000);
    submit_one(HVT_RING_NET_READ, top + 0x1000, 1514);
    survived();
  }
  if (strcmp(mode, "write-outside") == 0) {
    hvt_printf("expect: gpa=0x%lx sz=64\n", top - 16);
    submit_one(HVT_RING_NET_WRITE, top - 16, 64);
    survived();
  }
  if (strcmp(mode, "read-text") == 0) {
    uint64_t text = (uint64_t)(uintptr_t)&guest_main;
    hvt_printf("expect: gpa=0x%lx sz=64\n", text);
    submit_one(HVT_RING_NET_READ, text, 64);
    survived();
  }
  if (strcmp(mode, "write-huge") == 0) {
    expect("gpa=0x200000 sz=4294963200");
    submit_one(HVT_RING_NET_WRITE, 0x200000, 0xfffff000u);
    survived();
  }
  if (strcmp(mode, "burst") == 0) {
    /* 1023 entries with one store of ent_tail (the limit of §13.4 rule 1). */
    uint32_t t = r->ent_tail;
    while ((uint32_t)(t - r->ent_head) != 0) hvt_cpu_relax();
    for (uint32_t i = 0; i < HVT_RING_SIZE - 1; i++) fill(t + i, HVT_RING_NET_WRITE, handle, (uint64_t)(uintptr_t)frame, 60);
    hvt_wmb();
    r->ent_tail = t + HVT_RING_SIZE - 1;
    hvt_mb();
    if (r->needs_kick) hvt_ring_kick();
    uint32_t max_out = 0;
    for (int64_t i = 0; i < n; i++) {
      uint32_t out = r->ent_tail - r->ent_head;
      if (out > max_out) max_out = out;
      hvt_s5_net_write(handle, frame, 60);
    }
    uint32_t out = r->ent_tail - r->ent_head;
    if (out > max_out) max_out = out;
    size_t got = 0;
    int rr = hvt_s5_net_read(handle, rx, sizeof rx, &got);
    hvt_printf("burst: sent=%lu max_outstanding=%u read=%d\n", (uint64_t)(HVT_RING_SIZE - 1) + (uint64_t)n, max_out, rr);
    return 0;
  }
  if (strcmp(mode, "garbage") == 0) {
    uint32_t reads = 0;
    uint32_t c0 = r->com_tail;
    for (int i = 0; i < 1000; i++) {
      while ((uint32_t)(r->ent_tail - r->ent_head) >= HVT_RING_SIZE - 1) hvt_cpu_relax();
      uint32_t op = next() % 5; /* 0, 1 write, 2 read, 3, 4: unknown */
      uint32_t h = next() % 4;  /* 0: reserved entry, 1: service, 2, 3: none */
      uint32_t len = next() % 2048;
      if (op == HVT_RING_NET_READ) reads++;
      /* Writes to the real device send rx's bytes: harmless junk frames. */
      fill(r->ent_tail, op, h, (uint64_t)(uintptr_t)(op == HVT_RING_NET_READ ? rx : rx), op == HVT_RING_NET_READ ? sizeof rx : len);
      slot(r->ent_tail)->id = next();
      hvt_ring_submit();
    }
    while (r->ent_head != r->ent_tail) hvt_cpu_relax();
    /* The 2 MiB reservation past the ring must still be zero. */
    const uint8_t *after = (const uint8_t *)(uintptr_t)(top + sizeof(struct hvt_ring));
    for (int i = 0; i < 65536; i++) if (after[i]) hvt_abort("host wrote past the ring");
    hvt_printf("garbage: reads=%u commits=%u\n", reads, r->com_tail - c0);
    return 0;
  }
  if (strcmp(mode, "no-consume") == 0) {
    for (int64_t i = 0; i < n; i++) {
      while ((uint32_t)(r->ent_tail - r->ent_head) >= HVT_RING_SIZE - 1) hvt_cpu_relax();
      fill(r->ent_tail, HVT_RING_NET_READ, handle, (uint64_t)(uintptr_t)rx, sizeof rx);
      hvt_ring_submit();
    }
    while (r->ent_head != r->ent_tail) hvt_cpu_relax();
    const uint8_t *after = (const uint8_t *)(uintptr_t)(top + sizeof(struct hvt_ring));
    for (int i = 0; i < 65536; i++) if (after[i]) hvt_abort("host wrote past the ring");
    hvt_printf("no-consume: com_head=%u com_tail=%u\n", r->com_head, r->com_tail);
    return 0;
  }
  if (strcmp(mode, "host-fields") == 0) {
    uint32_t tail = r->com_tail;
    r->ent_head = 0xdeadbeefu;
    r->com_tail = 0x12345678u;
    r->needs_kick = 7;
    /* One read, kicked whatever needs_kick says (the guest just overwrote it). */
    uint32_t id = 0xabcd0000u + r->ent_tail;
    fill(r->ent_tail, HVT_RING_NET_READ, handle, (uint64_t)(uintptr_t)rx, sizeof rx);
    slot(r->ent_tail)->id = id;
    hvt_wmb();
    r->ent_tail++;
    hvt_mb();
    hvt_ring_kick();
    /* The host publishes its own com_tail (tail + 1), not garbage + 1, and
     * its own ent_head; it stores them one after the other, so wait (up to
     * 20 s) until both are rewritten before judging either. */
    uint64_t deadline = hvt_monotonic_ns() + 20000000000ull;
    while ((r->com_tail == 0x12345678u || r->ent_head == 0xdeadbeefu) && hvt_monotonic_ns() < deadline) hvt_cpu_relax();
    struct hvt_ring_commit *c = &r->commits[tail & HVT_RING_MASK];
    hvt_printf("host-fields: id_ok=%d ret=%d com_tail=%u expected=%u ent_head_ok=%d\n", c->id == id, c->ret, r->com_tail, tail + 1,
               r->ent_head == r->ent_tail);
    return 0;
  }
  if (strcmp(mode, "spin") == 0) {
    hvt_printf("spinning\n");
    for (;;) {
      size_t got;
      hvt_s5_net_read(handle, rx, sizeof rx, &got);
    }
  }
  hvt_printf("unknown mode\n");
  return 4;
}
