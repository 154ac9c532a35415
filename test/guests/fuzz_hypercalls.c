/*
 * fuzz_hypercalls: random hypercalls against the tender, each checked
 * against the spec (docs/abi.md §9.2, §9.3, §10; README "Choices").
 *
 *   fuzz_hypercalls.hvt SEED COUNT [verbose]
 *
 * needs the block device "storage" (capacity a multiple of 8, at most 16
 * KiB) filled with the pattern of pattern_word() below (the test computes
 * the same words). The guest first reads the whole disk and checks the
 * pattern, then makes COUNT-1 random calls (WALLTIME, PUTS, POLL,
 * BLOCK_WRITE, BLOCK_READ) with argument structures at random places (its
 * own buffers, the heap, the top of memory, the boot-info region, low
 * memory, its read-only text) and random field values (handles, offsets,
 * lengths, data pointers, timeouts up to 1 ms). Before each call it predicts
 * what the tender must do, by §9.3 and §10 (and the README's choice that
 * the tender refuses to write into read-only ELF segments):
 *   - a call predicted fatal is skipped (only the last call may end the run);
 *   - a call whose effects would harm the guest itself is skipped;
 *   - otherwise it is issued and the result is checked: BLOCK ret (0, or 2
 *     for bad handles and ranges), data read back against a shadow copy of
 *     the disk, POLL ret and ready set 0 (no net device), WALLTIME sane,
 *     input fields unchanged. A mismatch prints an "@@ FAIL" line. PUTS
 *     prints only letters from a buffer of its own (or nothing), so the test
 *     can count the console bytes (putsb= in the "@@ done" line).
 * Then it prints "@@ done ..." with the counts and a hash of the shadow
 * disk, "@@ wrote OFF:LEN ..." for every successful BLOCK_WRITE (hex), the
 * last calls, and finally the last call, which may be fatal:
 *   "@@ final ... expect=KIND TEXT", KIND one of
 *     fatal   the tender must exit 1 with exactly "ukvm-ts: TEXT"
 *     prefix  the same, but TEXT is only the start of the line
 *     halt    the tender must exit with status TEXT and print nothing
 *     survive the call returns: the guest prints "@@ survived", exits 0
 *     any     the guest cannot predict it (structure in low memory): any
 *             documented outcome
 * Compiled with FUZZ_NET (fuzz_hypercalls_net.c), the manifest also has the
 * net device "service" (handle 2) and NET_WRITE / NET_READ join in.
 * Every log line starts with "\n@@ " so that console bytes from the fuzzed
 * PUTS calls (letters only) never hide one. All state is a function of
 * SEED: a failure replays by running the same SEED and COUNT; "verbose"
 * also prints every call ("@@ issue ...") just before it is issued.
 */
#include "hvt.h"

#ifdef FUZZ_NET
/* fuzz_hypercalls_net.c: the same guest with a net device as well. */
HVT_MANIFEST(HVT_BLOCK("storage"), HVT_NET("service"));
#define NET_HANDLE 2u
#else
HVT_MANIFEST(HVT_BLOCK("storage"));
#endif

#define DISK_MAX 16384u
#define ARENA_SIZE 65536u
#define POOL_SIZE 1024u
#define JUNK_SIZE 256u
#define RING 12u
#define WLOG_MAX 4096u
#define MAX_FAIL_LINES 6

typedef uint64_t __attribute__((aligned(1), may_alias)) u64u;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32u;
typedef int32_t __attribute__((aligned(1), may_alias)) i32u;

extern char _stext[], _erodata[], _end[];

static uint8_t shadow[DISK_MAX] __attribute__((aligned(8)));
static uint8_t arena[ARENA_SIZE] __attribute__((aligned(4096)));
static uint8_t pool[POOL_SIZE] __attribute__((aligned(64)));
static uint8_t junk[JUNK_SIZE];
static const uint8_t ro_target[64] __attribute__((aligned(64))) = "read-only target";

static struct { uint32_t off, len; } wlog[WLOG_MAX];
static unsigned nwlog;

struct rec {
  uint32_t i, nr, gpa;
  int32_t expect, got;
  uint64_t f[4];
};
static struct rec ring[RING];
static unsigned nring;

static uint64_t mem, cap, text_lo, text_hi, heap_lo, heap_hi;
static int verbose; /* third word "verbose": print every call before issuing it */
#ifdef FUZZ_NET
static uint8_t mac[6];
static uint8_t arp[64];
#endif
static unsigned fails, issued, skipped, einval, again, frames, per_nr[9];
static uint64_t puts_bytes; /* console bytes asked for by the fuzzed PUTS calls */

/* ---- PRNG: xorshift64* ---- */
static uint64_t rs;
static uint64_t rnd(void) {
  rs ^= rs >> 12;
  rs ^= rs << 25;
  rs ^= rs >> 27;
  return rs * 0x2545F4914F6CDD1Dull;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(unsigned percent) { return below(100) < percent; }

#ifdef FUZZ_NET
/* An ARP request for 10.77.K.1 (the host side of tap K in the test's
 * namespace) from 10.77.K.2: the host answers, so frames arrive for
 * NET_READ and POLL. Returns its length. */
static uint64_t arp_request(void) {
  uint8_t k = (uint8_t)(1 + below(2));
  static const uint8_t head[] = { 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01 };
  memset(arp, 0xff, 6);
  memcpy(arp + 6, mac, 6);
  memcpy(arp + 12, head, sizeof head);
  memcpy(arp + 22, mac, 6);
  arp[28] = 10; arp[29] = 77; arp[30] = k; arp[31] = 2;
  memset(arp + 32, 0, 6);
  arp[38] = 10; arp[39] = 77; arp[40] = k; arp[41] = 1;
  return 42;
}
#endif

/* Disk pattern: word w of the initial image (the test computes the same). */
static uint64_t pattern_word(uint64_t w) {
  uint64_t x = (w + 1) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x;
}

static uint64_t shadow_hash(void) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t w = 0; w < cap / 8; w++) {
    h ^= ((const u64u *)shadow)[w];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Byte-wise comparison in one instruction (guest code is slow here). */
static int same(const void *a, const void *b, uint64_t n) {
  if (n == 0) return 1;
  unsigned char eq;
  __asm__ __volatile__("repe cmpsb\n\tsete %0" : "=q"(eq), "+S"(a), "+D"(b), "+c"(n) : : "memory", "cc");
  return eq;
}

static uint64_t rd64(uint64_t gpa) { return *(volatile u64u *)(uintptr_t)gpa; }
static uint32_t rd32(uint64_t gpa) { return *(volatile u32u *)(uintptr_t)gpa; }
static void wr64(uint64_t gpa, uint64_t v) { *(volatile u64u *)(uintptr_t)gpa = v; }
static void wr32(uint64_t gpa, uint32_t v) { *(volatile u32u *)(uintptr_t)gpa = v; }

/* ---- Regions ---- */

/* [a, a+len) inside [lo, hi), without overflow. */
static int within(uint64_t a, uint64_t len, uint64_t lo, uint64_t hi) {
  return a >= lo && hi >= lo && len <= hi - lo && a - lo <= hi - lo - len;
}
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return alen && blen && a < b + blen && b < a + alen;
}

#define ARENA ((uint64_t)(uintptr_t)arena)
#define POOL ((uint64_t)(uintptr_t)pool)
#define JUNK ((uint64_t)(uintptr_t)junk)
#define LOW_UNUSED(a, n) (within(a, n, 0, 0x1000) || within(a, n, 0x9000, 0x10000))
#define BOOT_REGION(a, n) within(a, n, 0x10000, 0x100000)
/* Top of memory: [mem-24, mem) holds only the entry "return address" slot
 * and the never-used call frame of hvt_runtime_start (noreturn). */
#define TOP(a, n) within(a, n, mem - 24, mem)

/* Memory the tender may write without harming the guest (the structure
 * pool holds nothing but the structure of the current call). */
static int safe_dst(uint64_t a, uint64_t n) {
  return within(a, n, ARENA, ARENA + ARENA_SIZE) || within(a, n, POOL, POOL + POOL_SIZE) || within(a, n, heap_lo, heap_hi) || BOOT_REGION(a, n) ||
         TOP(a, n) || LOW_UNUSED(a, n);
}
/* Memory the guest can read and that holds still: 1; low memory (the guest
 * cannot read it, the tender can): 2; else 0. */
static int mirror_src(uint64_t a, uint64_t n) {
  if (within(a, n, text_lo, text_hi) || BOOT_REGION(a, n) || within(a, n, ARENA, ARENA + ARENA_SIZE) ||
      within(a, n, JUNK, JUNK + JUNK_SIZE) || within(a, n, heap_lo, heap_hi) || TOP(a, n))
    return 1;
  if (within(a, n, 0, 0x10000)) return 2;
  return 0;
}
/* Mapped for the guest (reads do not fault). */
static int guest_readable(uint64_t a, uint64_t n) { return within(a, n, 0x10000, mem); }
/* Where the guest may build a structure itself. */
static int guest_writable(uint64_t a, uint64_t n) {
  return within(a, n, POOL, POOL + POOL_SIZE) || within(a, n, ARENA, ARENA + ARENA_SIZE) ||
         within(a, n, heap_lo, heap_hi) || TOP(a, n);
}

/* ---- The spec model ---- */

enum { P_OK, P_FATAL, P_HALT, P_UNKNOWN };
struct pred {
  int kind;
  uint64_t gpa, sz; /* P_FATAL: the Invalid guest access line */
  int ret;          /* BLOCK: 0 or 2 */
  int io;           /* BLOCK: the transfer happens */
  int status;       /* P_HALT */
};

static const uint32_t argsize[9] = { 0, 8, 16, 24, 40, 40, 32, 32, 16 };

/* §9.3, plus: the tender never writes into a read-only ELF segment. */
static int region_ok(uint64_t gpa, uint64_t len, int tender_writes) {
  if (gpa >= mem || len > ~0ull - gpa || gpa + len >= mem) return 0;
  if (tender_writes && len && overlaps(gpa, len, text_lo, text_hi - text_lo)) return 0;
  return 1;
}

static struct pred fatal(uint64_t gpa, uint64_t sz) {
  struct pred p = { .kind = P_FATAL, .gpa = gpa, .sz = sz, .ret = -1 };
  return p;
}

/* What the tender must do for hypercall nr with its structure at gpa. */
static struct pred predict(unsigned nr, uint64_t gpa) {
  struct pred p = { .kind = P_OK, .ret = -1 };
  uint32_t size = argsize[nr];
  /* Every structure but PUTS's and HALT's gets results written into it. */
  int writes = nr != HVT_HC_PUTS && nr != HVT_HC_HALT;
  if (!region_ok(gpa, size, writes)) return fatal(gpa, size);
  if (nr == HVT_HC_WALLTIME) return p;
  if (!guest_readable(gpa, size)) {
    p.kind = P_UNKNOWN;
    return p;
  }
  switch (nr) {
  case HVT_HC_PUTS:
    if (!region_ok(rd64(gpa), rd64(gpa + 8), 0)) return fatal(rd64(gpa), rd64(gpa + 8));
    return p;
  case HVT_HC_POLL:
    return p;
  case HVT_HC_BLOCK_WRITE:
  case HVT_HC_BLOCK_READ: {
    uint64_t handle = rd64(gpa), off = rd64(gpa + 8), data = rd64(gpa + 16), len = rd64(gpa + 24);
    if (handle != 1 || len > 0x7fffffffffffffffull || off >= cap || off + len > cap) {
      p.ret = 2;
      return p;
    }
    if (!region_ok(data, len, nr == HVT_HC_BLOCK_READ)) return fatal(data, len);
    p.ret = 0;
    p.io = 1;
    return p;
  }
#ifdef FUZZ_NET
  case HVT_HC_NET_WRITE:
  case HVT_HC_NET_READ: {
    uint64_t handle = rd64(gpa), data = rd64(gpa + 8), len = rd64(gpa + 16);
    if (handle != NET_HANDLE) {
      p.ret = 2;
      return p;
    }
    if (!region_ok(data, len, nr == HVT_HC_NET_READ)) return fatal(data, len);
    /* A write is OK (the tap refuses frames shorter than an Ethernet header:
     * the caller deals with that); a read is OK or AGAIN. */
    p.ret = nr == HVT_HC_NET_WRITE ? 0 : -2;
    p.io = 1;
    return p;
  }
#endif
  case HVT_HC_HALT: {
    uint64_t cookie = rd64(gpa);
    if (cookie && !region_ok(cookie, HVT_COOKIE_SIZE, 0)) return fatal(cookie, HVT_COOKIE_SIZE);
    p.kind = P_HALT;
    p.status = (int)(rd32(gpa + 8) & 0xff);
    return p;
  }
  }
  p.kind = P_UNKNOWN;
  return p;
}

/* ---- Random values ---- */

static uint64_t interesting(void) {
  switch (below(24)) {
  case 0: return 0;
  case 1: return 1;
  case 2: return 2;
  case 3: return 511;
  case 4: return 512;
  case 5: return 4096;
  case 6: return 0x7fffffffull;
  case 7: return 0x80000000ull;
  case 8: return 0xffffffffull;
  case 9: return 0x100000000ull;
  case 10: return 0x7fffffffffffffffull;
  case 11: return 0x8000000000000000ull;
  case 12: return ~0ull;
  case 13: return ~0ull - 511;
  case 14: return cap - 1;
  case 15: return cap;
  case 16: return cap + 1;
  case 17: return mem - 1;
  case 18: return mem;
  case 19: return mem + 1;
  case 20: return 0x100000001ull;
  case 21: return (uint64_t)0 - cap;
  default: return rnd();
  }
}

/* A data pointer for `len` bytes; wild adds more places that are refused. */
static uint64_t gen_data(uint64_t len, int wild) {
  uint64_t l = len < ARENA_SIZE ? len : ARENA_SIZE;
  switch (below(wild ? 14 : 10)) {
  case 0: case 1: case 2: case 3:
    return ARENA + below(ARENA_SIZE - l + 1);
  case 4: case 5:
    return heap_lo + below(heap_hi - heap_lo - (len < heap_hi - heap_lo ? len : 0) + 1);
  case 6:
    return 0x10000 + below(0xf0000);
  case 7:
    return mem - len - below(4) + (chance(30) ? 1 : 0);
  case 8:
    return text_lo + below(text_hi - text_lo);
  case 9:
    return below(0x10000);
  case 10:
    return POOL + below(POOL_SIZE);
  case 11:
    return 0x100000000ull + ARENA;
  case 12:
    return mem + below(0x1000);
  default:
    return interesting();
  }
}

/* A structure GPA for `size` bytes; wild adds places that are always refused. */
static uint64_t gen_struct(uint32_t size, int wild) {
  switch (below(wild ? 22 : 16)) {
  case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
    return POOL + below(POOL_SIZE - size + 1);
  case 8:
    return ARENA + below(ARENA_SIZE - size + 1);
  case 9:
    return heap_lo + below(heap_hi - heap_lo - size);
  case 10: case 11:
    /* Boot-info region, sometimes straddling into text. */
    return chance(70) ? 0x10000 + below(0xf0000 - size) : 0x100000 - size + below(size + 1);
  case 12: case 13:
    /* Top of memory: fits, ends at mem_size, straddles, beyond. */
    return mem - size - below(size + 24) + (chance(50) ? below(size + 2) : 0);
  case 14:
    return below(0x1000);
  case 15:
    return 0x9000 + below(0x7000 - size);
  case 16: case 17:
    return text_lo + below(text_hi - text_lo);
  case 18:
    return mem + below(0x10000);
  case 19:
    return 0xffffffffull - below(64);
  case 20:
    return below(0x10000);
  default:
    return rnd() & 0xffffffffull;
  }
}

/* Fills the fields of a structure the guest can write. */
static void fill(unsigned nr, uint64_t gpa, int wild) {
  switch (nr) {
  case HVT_HC_WALLTIME:
    wr64(gpa, 0);
    break;
  case HVT_HC_PUTS: {
    uint64_t len = chance(60) ? below(48) : (chance(50) ? 0 : interesting());
    uint64_t data = chance(70) ? JUNK + below(JUNK_SIZE - (len < JUNK_SIZE ? len : 0)) : gen_data(len, wild);
    wr64(gpa, data);
    wr64(gpa + 8, len);
    break;
  }
  case HVT_HC_POLL: {
    static const uint64_t t[] = { 0, 0, 1, 999, 1000, 50000, 1000000 };
    wr64(gpa, t[below(sizeof t / sizeof t[0])]);
    wr64(gpa + 8, 0x5555555555555555ull);
    wr32(gpa + 16, 0x55555555u);
    break;
  }
  case HVT_HC_BLOCK_WRITE:
  case HVT_HC_BLOCK_READ: {
    uint64_t handle = chance(88) ? 1 : chance(25) ? 2 : interesting();
    uint64_t off, len;
    switch (below(8)) {
    case 0: case 1: case 2:
      off = below(cap);
      len = below((cap - off < 2048 ? cap - off : 2048) + 1);
      break;
    case 3:
      off = below(cap / 512) * 512;
      len = 512;
      break;
    case 4:
      len = below(cap + 1);
      off = cap - len + (chance(50) ? 0 : below(3));
      break;
    case 5:
      off = below(cap + 2);
      len = cap - off + below(3);
      break;
    case 6:
      off = interesting();
      len = chance(50) ? below(600) : interesting();
      break;
    default:
      off = below(cap);
      len = interesting();
      break;
    }
    wr64(gpa, handle);
    wr64(gpa + 8, off);
    wr64(gpa + 16, gen_data(len, wild));
    wr64(gpa + 24, len);
    wr32(gpa + 32, 0x55555555u);
    break;
  }
  case HVT_HC_NET_WRITE:
  case HVT_HC_NET_READ: {
    uint64_t handle = chance(85) ? 2 : chance(40) ? 1 : interesting();
    uint64_t len;
    if (nr == HVT_HC_NET_WRITE) len = chance(75) ? 14 + below(1501) : chance(60) ? 14 + below(9000) : interesting();
    else len = chance(80) ? below(2049) : interesting();
    uint64_t data = gen_data(len, wild);
#ifdef FUZZ_NET
    if (nr == HVT_HC_NET_WRITE && chance(20)) {
      len = arp_request();
      data = (uint64_t)(uintptr_t)arp;
    }
#endif
    wr64(gpa, handle);
    wr64(gpa + 8, data);
    wr64(gpa + 16, len);
    wr32(gpa + 24, 0x55555555u);
    break;
  }
  case HVT_HC_HALT: {
    static const int32_t st[] = { 0, 1, 2, 3, 255, 256, 300, -1, 0x7fffffff, (int32_t)0x80000000 };
    uint64_t cookie;
    switch (below(10)) {
    case 0: case 1: case 2: case 3: cookie = 0; break;
    case 4: cookie = ARENA + below(ARENA_SIZE - 512); break;
    case 5: cookie = mem - 512 - below(3) + below(3); break;
    case 6: cookie = text_lo + below(text_hi - text_lo); break;
    case 7: cookie = below(0x100000); break;
    default: cookie = interesting(); break;
    }
    wr64(gpa, cookie);
    wr32(gpa + 8, chance(70) ? (uint32_t)st[below(sizeof st / sizeof st[0])] : (uint32_t)rnd());
    break;
  }
  }
}

/* ---- Logging ---- */

static void record(unsigned i, unsigned nr, uint64_t gpa, int expect) {
  struct rec *r = &ring[nring++ % RING];
  r->i = i;
  r->nr = nr;
  r->gpa = (uint32_t)gpa;
  r->expect = expect;
  r->got = -1;
  for (unsigned k = 0; k < 4; k++) r->f[k] = guest_readable(gpa + 8 * k, 8) ? rd64(gpa + 8 * k) : 0;
}

static void print_ring(void) {
  unsigned n = nring < RING ? nring : RING;
  for (unsigned k = nring - n; k < nring; k++) {
    const struct rec *r = &ring[k % RING];
    hvt_printf("\n@@ call i=%u nr=%u gpa=0x%x f=0x%lx,0x%lx,0x%lx,0x%lx expect=%d got=%d\n", r->i, r->nr, r->gpa, r->f[0], r->f[1],
               r->f[2], r->f[3], r->expect, r->got);
  }
}

static void fail(unsigned i, const char *what, uint64_t a, uint64_t b) {
  fails++;
  if (fails > MAX_FAIL_LINES) return;
  hvt_printf("\n@@ FAIL i=%u %s (0x%lx 0x%lx)\n", i, what, a, b);
  print_ring();
}

/* ---- One non-final call ---- */

/* One attempt; returns 0 if the call was skipped. */
static int attempt(unsigned i) {
#ifdef FUZZ_NET
  static const unsigned nrs[] = { 1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 2, 1, 6, 6, 6, 6, 7, 7, 7, 7 };
#else
  static const unsigned nrs[] = { 1, 2, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 2, 1 };
#endif
  unsigned nr = nrs[below(sizeof nrs / sizeof nrs[0])];
  uint32_t size = argsize[nr];
  uint64_t gpa = gen_struct(size, 0);
  if (guest_writable(gpa, size)) fill(nr, gpa, 0);
  /* Whatever is there now is what the tender will read: it must hold still
   * (not the stack, say) until the call. */
  if (nr != HVT_HC_WALLTIME && !guest_writable(gpa, size) && !within(gpa, size, 0x10000, text_hi)) {
    skipped++;
    return 0;
  }
  struct pred p = predict(nr, gpa);
  if (p.kind != P_OK) {
    skipped++;
    return 0;
  }
  uint64_t f0 = 0, f1 = 0, f2 = 0, f3 = 0;
  if (guest_readable(gpa, size)) {
    f0 = rd64(gpa);
    f1 = size >= 16 ? rd64(gpa + 8) : 0;
    f2 = size >= 24 ? rd64(gpa + 16) : 0;
    f3 = size >= 32 ? rd64(gpa + 24) : 0;
  }
  /* Effects must be harmless to the guest and checkable. */
  int mirror = 0;
  switch (nr) {
  case HVT_HC_WALLTIME:
    if (!safe_dst(gpa, 8)) { skipped++; return 0; }
    break;
  case HVT_HC_PUTS:
    /* Console bytes: only letters (never a log line), or nothing. */
    if (f1 != 0 && !within(f0, f1, JUNK, JUNK + JUNK_SIZE)) { skipped++; return 0; }
    break;
  case HVT_HC_POLL:
    if (f0 > 1000000 || !safe_dst(gpa + 8, 12)) { skipped++; return 0; }
    break;
  case HVT_HC_BLOCK_WRITE:
  case HVT_HC_BLOCK_READ:
    if (!safe_dst(gpa + 32, 4)) { skipped++; return 0; }
    if (p.io && overlaps(f2, f3, gpa, size)) { skipped++; return 0; }
    if (p.io && nr == HVT_HC_BLOCK_READ && !safe_dst(f2, f3)) { skipped++; return 0; }
    if (p.io && nr == HVT_HC_BLOCK_WRITE) {
      mirror = mirror_src(f2, f3);
      if (!mirror || nwlog == WLOG_MAX) { skipped++; return 0; }
    }
    break;
  case HVT_HC_NET_WRITE:
  case HVT_HC_NET_READ:
    if (!safe_dst(gpa + 16, 12)) { skipped++; return 0; }
    if (p.io && nr == HVT_HC_NET_WRITE && (f2 < 14 || f2 > 65535)) { skipped++; return 0; }
    if (p.io && nr == HVT_HC_NET_READ && (!safe_dst(f1, f2) || overlaps(f1, f2, gpa, size))) { skipped++; return 0; }
    break;
  }

  record(i, nr, gpa, p.ret);
  if (verbose) {
    const struct rec *r = &ring[(nring - 1) % RING];
    hvt_printf("\n@@ issue i=%u nr=%u gpa=0x%x f=0x%lx,0x%lx,0x%lx,0x%lx expect=%d\n", r->i, r->nr, r->gpa, r->f[0], r->f[1], r->f[2], r->f[3],
               r->expect);
  }
  issued++;
  per_nr[nr]++;
  hvt_hypercall(nr, (volatile void *)(uintptr_t)gpa);
  int readable = guest_readable(gpa, size);

  switch (nr) {
  case HVT_HC_WALLTIME:
    if (readable) {
      uint64_t ns = rd64(gpa);
      if (ns < 1500000000000000000ull || ns > 4100000000000000000ull) fail(i, "WALLTIME nsecs not plausible", ns, gpa);
    }
    break;
  case HVT_HC_PUTS:
    if (rd64(gpa) != f0 || rd64(gpa + 8) != f1) fail(i, "PUTS changed its structure", rd64(gpa), rd64(gpa + 8));
    puts_bytes += f1;
    break;
  case HVT_HC_POLL:
#ifdef FUZZ_NET
    /* Only the net device (bit 2) can be ready; ret counts ready devices. */
    if ((rd64(gpa + 8) != 0 && rd64(gpa + 8) != 1u << NET_HANDLE) || rd32(gpa + 16) != (rd64(gpa + 8) ? 1u : 0u))
      fail(i, "POLL ready_set/ret", rd64(gpa + 8), rd32(gpa + 16));
#else
    if (rd64(gpa + 8) != 0 || rd32(gpa + 16) != 0) fail(i, "POLL ready_set/ret not 0 without net devices", rd64(gpa + 8), rd32(gpa + 16));
#endif
    if (rd64(gpa) != f0) fail(i, "POLL changed its timeout", rd64(gpa), f0);
    break;
  case HVT_HC_BLOCK_WRITE:
  case HVT_HC_BLOCK_READ: {
    int32_t ret = *(volatile i32u *)(uintptr_t)(gpa + 32);
    ring[(nring - 1) % RING].got = ret;
    if (ret != p.ret) {
      fail(i, nr == HVT_HC_BLOCK_READ ? "BLOCK_READ ret" : "BLOCK_WRITE ret", (uint64_t)(int64_t)ret, (uint64_t)p.ret);
      break;
    }
    if (rd64(gpa) != f0 || rd64(gpa + 8) != f1 || rd64(gpa + 16) != f2 || rd64(gpa + 24) != f3) {
      fail(i, "BLOCK changed an input field", rd64(gpa + 8), rd64(gpa + 24));
    }
    if (ret != 0 || f3 == 0) break;
    if (nr == HVT_HC_BLOCK_READ) {
      if (guest_readable(f2, f3) && !same((const void *)(uintptr_t)f2, shadow + f1, f3)) fail(i, "BLOCK_READ data differs from what was written", f1, f3);
    } else {
      if (mirror == 1) {
        memmove(shadow + f1, (const void *)(uintptr_t)f2, f3);
      } else {
        /* Written from memory the guest cannot read: take it back from the disk. */
        volatile struct hvt_hc_block_io b = { .handle = 1, .offset = f1, .data = ARENA, .len = f3, .ret = -1 };
        hvt_hypercall(HVT_HC_BLOCK_READ, &b);
        if (b.ret != 0) fail(i, "read-back failed", (uint64_t)(int64_t)b.ret, f1);
        memcpy(shadow + f1, arena, f3);
      }
      wlog[nwlog].off = (uint32_t)f1;
      wlog[nwlog].len = (uint32_t)f3;
      nwlog++;
    }
    break;
  }
  case HVT_HC_NET_WRITE:
  case HVT_HC_NET_READ: {
    int32_t ret = *(volatile i32u *)(uintptr_t)(gpa + 24);
    uint64_t len = rd64(gpa + 16);
    ring[(nring - 1) % RING].got = ret;
    if (rd64(gpa) != f0 || rd64(gpa + 8) != f1) fail(i, "NET changed handle or data", rd64(gpa), rd64(gpa + 8));
    if (p.ret != -2) {
      if (ret != p.ret) fail(i, nr == HVT_HC_NET_READ ? "NET_READ ret" : "NET_WRITE ret", (uint64_t)(int64_t)ret, (uint64_t)p.ret);
      if (len != f2) fail(i, "NET changed len", len, f2);
    } else if (ret == 1) {
      again++;
      if (len != f2) fail(i, "NET_READ AGAIN changed len", len, f2);
    } else if (ret == 0) {
      frames++;
      if (len == 0 || len > f2) fail(i, "NET_READ frame size outside [1, len]", len, f2);
    } else {
      fail(i, "NET_READ ret neither 0 nor 1", (uint64_t)(int64_t)ret, 0);
    }
    break;
  }
  }
  if (p.ret == 2) einval++;
  return 1;
}

/* Call i: a few attempts at a call that may be issued. */
static void issue_checked(unsigned i) {
  for (int k = 0; k < 4; k++)
    if (attempt(i)) return;
}

/* ---- The last call ---- */

extern const char fuzz_ud2[];

static void final_line(unsigned i, const char *kind, unsigned nr, unsigned port, uint64_t gpa, const char *expect) {
  hvt_printf("\n@@ final i=%u kind=%s nr=%u port=0x%x gpa=0x%lx expect=%s", i, kind, nr, port, gpa, expect);
}

static __attribute__((noreturn)) void survived(void) {
  hvt_puts("\n@@ survived\n");
  hvt_halt(0, 0);
}

static void final_call(unsigned i) {
  switch (below(20)) {
  case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: {
    /* A hypercall anywhere, with anything in it; HALT included. */
    for (unsigned tries = 0; tries < 40; tries++) {
      unsigned nr = 1 + (unsigned)below(8);
#ifndef FUZZ_NET
      if (nr == HVT_HC_NET_WRITE || nr == HVT_HC_NET_READ) nr = HVT_HC_HALT;
#endif
      uint32_t size = argsize[nr];
      uint64_t gpa = gen_struct(size, 1);
      if (guest_writable(gpa, size)) fill(nr, gpa, 1);
      struct pred p = predict(nr, gpa);
      if (p.kind == P_UNKNOWN) continue;
      /* Unless the structure itself is refused, its content must hold still. */
      int refused = p.kind == P_FATAL && p.gpa == gpa && p.sz == size;
      if (!refused && nr != HVT_HC_WALLTIME && !guest_writable(gpa, size) && !within(gpa, size, 0x10000, text_hi)) continue;
      if (p.kind == P_OK) {
        /* A call that returns must leave the guest and the disk as they are. */
        int rd = guest_readable(gpa, size);
        uint64_t f0 = rd ? rd64(gpa) : 0, f1 = rd && size >= 16 ? rd64(gpa + 8) : 0, f2 = rd && size >= 24 ? rd64(gpa + 16) : 0,
                 f3 = rd && size >= 32 ? rd64(gpa + 24) : 0;
        if (nr == HVT_HC_WALLTIME && !safe_dst(gpa, 8)) continue;
        if (nr == HVT_HC_PUTS && f1 > 4096) continue;
        if (nr == HVT_HC_POLL && (f0 > 1000000 || !safe_dst(gpa + 8, 12))) continue;
        if ((nr == HVT_HC_BLOCK_WRITE || nr == HVT_HC_BLOCK_READ) && !safe_dst(gpa + 32, 4)) continue;
        if (p.io && nr == HVT_HC_BLOCK_WRITE && f3) continue;
        if (p.io && nr == HVT_HC_BLOCK_READ && (!safe_dst(f2, f3) || overlaps(f2, f3, gpa, size))) continue;
        if ((nr == HVT_HC_NET_WRITE || nr == HVT_HC_NET_READ) && !safe_dst(gpa + 16, 12)) continue;
        if (p.io && nr == HVT_HC_NET_READ && (!safe_dst(f1, f2) || overlaps(f1, f2, gpa, size))) continue;
        if (p.io && nr == HVT_HC_NET_WRITE && f2 > 65535) continue;
        if (p.io && nr == HVT_HC_NET_WRITE && f2 < 14)
          final_line(i, "hypercall", nr, HVT_PORT_BASE + nr, gpa, "prefix Fatal error when writing: ");
        else
          final_line(i, "hypercall", nr, HVT_PORT_BASE + nr, gpa, "survive");
      } else if (p.kind == P_HALT) {
        hvt_printf("\n@@ final i=%u kind=hypercall nr=%u port=0x%x gpa=0x%lx expect=halt %d", i, nr, HVT_PORT_BASE + nr, gpa, p.status);
      } else {
        hvt_printf("\n@@ final i=%u kind=hypercall nr=%u port=0x%x gpa=0x%lx expect=fatal Invalid guest access: gpa=0x%lx, sz=%lu", i, nr,
                   HVT_PORT_BASE + nr, gpa, p.gpa, p.sz);
      }
      hvt_puts("\n");
      hvt_hypercall(nr, (volatile void *)(uintptr_t)gpa);
      survived();
    }
    break; /* nothing suitable: fall through to a plain HALT below */
  }
  case 8: case 9: case 10: {
    /* Hypercalls nobody registered: 0, and the net ones (no net device). */
#ifdef FUZZ_NET
    static const unsigned un[] = { 0 };
#else
    static const unsigned un[] = { 0, 6, 7 };
#endif
    unsigned nr = un[below(sizeof un / sizeof un[0])];
    uint64_t gpa = chance(50) ? POOL : gen_struct(32, 1);
    final_line(i, "unregistered", nr, HVT_PORT_BASE + nr, gpa, "fatal");
    hvt_printf(" Invalid guest hypercall: num=%u\n", nr);
    hvt_outl((uint16_t)(HVT_PORT_BASE + nr), (uint32_t)gpa);
    survived();
  }
  case 11: case 12: case 13: {
    /* Port accesses outside the hypercall protocol. */
    static const uint16_t ports[] = { 0x4ff, 0x509, 0x50a, 0x50f, 0x510, 0x5ff, 0x600, 0x601, 0x1234, 0xfff0 };
    unsigned how = (unsigned)below(4);
    uint16_t port = how == 0 ? ports[below(sizeof ports / sizeof ports[0])] : (uint16_t)(HVT_PORT_BASE + below(9));
    final_line(i, how == 0 ? "port-outl" : how == 1 ? "port-inl" : how == 2 ? "port-outb" : "port-outw", 0, port, POOL, "fatal");
    hvt_printf(" Invalid guest port access: port=0x%x\n", port);
    if (how == 0) hvt_outl(port, (uint32_t)POOL);
    else if (how == 1) (void)hvt_inl(port);
    else if (how == 2) hvt_outb(port, (uint8_t)POOL);
    else hvt_outw(port, (uint16_t)POOL);
    survived();
  }
  case 14: case 15: {
    /* A structure in low memory: the guest cannot see what the tender reads. */
    static const unsigned nrs[] = { HVT_HC_PUTS, HVT_HC_BLOCK_READ, HVT_HC_HALT, HVT_HC_WALLTIME };
    unsigned nr = nrs[below(4)];
    uint64_t gpa = chance(50) ? below(0x1000 - argsize[nr]) : 0x1000 + below(0xf000 - argsize[nr]);
    final_line(i, "low", nr, HVT_PORT_BASE + nr, gpa, "any");
    hvt_puts("\n");
    hvt_hypercall(nr, (volatile void *)(uintptr_t)gpa);
    survived();
  }
  case 16: {
    /* A store into text. */
    final_line(i, "store-text", 0, 0, (uint64_t)(uintptr_t)&final_call, "prefix KVM: host/guest translation fault: rip=0x");
    hvt_puts("\n");
    *(volatile uint32_t *)(uintptr_t)&final_call = 0xdeadbeef;
    survived();
  }
  case 17: {
    /* A store into rodata. */
    final_line(i, "store-rodata", 0, 0, (uint64_t)(uintptr_t)ro_target, "prefix KVM: host/guest translation fault: rip=0x");
    hvt_puts("\n");
    *(volatile uint8_t *)(uintptr_t)ro_target = 1;
    survived();
  }
  case 18: {
    /* An exception without an IDT: triple fault. */
    final_line(i, "ud2", 0, 0, (uint64_t)(uintptr_t)fuzz_ud2, "fatal");
    hvt_printf(" KVM: unhandled exit: exit_reason=0x8, rip=0x%lx\n", (uint64_t)(uintptr_t)fuzz_ud2);
    __asm__ __volatile__(".globl fuzz_ud2\nfuzz_ud2: ud2");
    survived();
  }
#ifdef FUZZ_NET
  case 19: {
    /* A frame shorter than an Ethernet header: the tap refuses it (EINVAL),
     * a host I/O error that ends the run (docs/abi.md §10.6). */
    uint64_t gpa = POOL + below(POOL_SIZE - 32 + 1);
    wr64(gpa, NET_HANDLE);
    wr64(gpa + 8, ARENA + below(4096));
    wr64(gpa + 16, below(14));
    final_line(i, "net-short-write", HVT_HC_NET_WRITE, HVT_PORT_BASE + HVT_HC_NET_WRITE, gpa, "prefix Fatal error when writing: ");
    hvt_puts("\n");
    hvt_hypercall(HVT_HC_NET_WRITE, (volatile void *)(uintptr_t)gpa);
    survived();
  }
#endif
  default:
    break;
  }
  /* A HALT with a random status and cookie from a structure in the pool. */
  {
    uint64_t gpa = POOL + below(POOL_SIZE - 16 + 1);
    fill(HVT_HC_HALT, gpa, 1);
    struct pred p = predict(HVT_HC_HALT, gpa);
    if (p.kind == P_HALT) {
      hvt_printf("\n@@ final i=%u kind=halt nr=8 port=0x508 gpa=0x%lx expect=halt %d", i, gpa, p.status);
    } else {
      hvt_printf("\n@@ final i=%u kind=halt nr=8 port=0x508 gpa=0x%lx expect=fatal Invalid guest access: gpa=0x%lx, sz=%lu", i, gpa, p.gpa,
                 p.sz);
    }
    hvt_puts("\n");
    hvt_hypercall(HVT_HC_HALT, (volatile void *)(uintptr_t)gpa);
    survived();
  }
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char word[24];
  int64_t seed = 0, count = 0;
  hvt_next_word(&cmdline, word, sizeof word);
  int ok = hvt_parse_i64(word, &seed) == 0;
  hvt_next_word(&cmdline, word, sizeof word);
  ok = ok && hvt_parse_i64(word, &count) == 0 && count >= 1 && count <= 100000;
  hvt_next_word(&cmdline, word, sizeof word);
  verbose = strcmp(word, "verbose") == 0;
  int h = hvt_mft_find("storage", HVT_MFT_BLOCK_BASIC);
  /* Everything needed from the boot-info region is copied now: the fuzzed
   * calls may write there later. */
  mem = bi->mem_size;
  cap = h == 1 ? hvt_mft()->e[1].u.block.capacity : 0;
  text_lo = (uint64_t)(uintptr_t)_stext;
  text_hi = (uint64_t)(uintptr_t)_erodata;
  heap_lo = (uint64_t)(uintptr_t)_end;
  heap_hi = mem - 0x100000;
#ifdef FUZZ_NET
  ok = ok && hvt_mft_find("service", HVT_MFT_NET_BASIC) == (int)NET_HANDLE;
  if (ok) memcpy(mac, hvt_mft()->e[NET_HANDLE].u.net.mac, 6);
#endif
  if (!ok || h != 1 || cap == 0 || cap > DISK_MAX || cap % 8 || heap_hi <= heap_lo + 0x10000) {
    hvt_printf("\n@@ usage: fuzz_hypercalls.hvt SEED COUNT, with block device 'storage' (handle 1) of at most %u bytes, --mem >= 4\n", DISK_MAX);
    return 2;
  }
  rs = ((uint64_t)seed * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;
  if (rs == 0) rs = 1;
  for (int k = 0; k < 4; k++) rnd();
  for (unsigned k = 0; k < JUNK_SIZE; k++) junk[k] = (uint8_t)('a' + k % 26);
  hvt_printf("\n@@ seed=%ld count=%ld mem=0x%lx cap=%lu text=0x%lx-0x%lx heap=0x%lx-0x%lx\n", seed, count, mem, cap, text_lo, text_hi,
             heap_lo, heap_hi);

  /* The whole disk, checked against the pattern: the shadow starts here. */
  if (hvt_block_read(1, 0, shadow, cap) != HVT_OK) fail(0, "initial read failed", 0, cap);
  for (uint64_t w = 0; w < cap / 8; w++) {
    if (((const u64u *)shadow)[w] != pattern_word(w)) {
      fail(0, "initial disk content differs from the pattern", w * 8, ((const u64u *)shadow)[w]);
      break;
    }
  }

  for (unsigned i = 0; i + 1 < (unsigned)count; i++) issue_checked(i);

  hvt_printf("\n@@ done calls=%ld issued=%u skipped=%u einval=%u walltime=%u puts=%u poll=%u bwrite=%u bread=%u nwrite=%u nread=%u again=%u frames=%u putsb=%lu fails=%u hash=0x%lx\n",
             count - 1, issued, skipped, einval, per_nr[1], per_nr[2], per_nr[3], per_nr[4], per_nr[5], per_nr[6], per_nr[7], again, frames,
             puts_bytes, fails, shadow_hash());
  for (unsigned k = 0; k < nwlog; k++) {
    if (k % 16 == 0) hvt_puts("\n@@ wrote");
    hvt_printf(" %x:%x", wlog[k].off, wlog[k].len);
  }
  if (nwlog) hvt_puts("\n");
  print_ring();
  final_call((unsigned)count - 1);
  return 0;
}
