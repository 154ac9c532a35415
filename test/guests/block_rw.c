/*
 * block_rw: exercises the block device "storage" through BLOCK_WRITE and
 * BLOCK_READ (docs/abi.md §10.4, §10.5, §11). Usage:
 *
 *   block_rw.hvt [rw] [SEED]   write the pattern of SEED to every block, read
 *                              every block back, then the edge cases below;
 *                              the disk holds exactly the pattern afterwards
 *   block_rw.hvt verify SEED   only read every block and compare (no writes)
 *
 * Pattern: block b holds the little-endian 32-bit words of a xorshift32
 * sequence seeded from SEED and b (test/helpers/disk.ts computes the same).
 * Edge cases (rw mode): the last block explicitly; unaligned reads and writes
 * (the tender does not require alignment, §10.5); reads/writes at or past
 * capacity, with huge lengths or offsets, and with wrong handles, all of
 * which must give EINVAL (2) without touching the disk. Any failure prints a
 * "block_rw: FAIL ..." line and the guest exits 1; success prints
 * "block_rw: ok" and exits 0.
 */
#include "hvt.h"

/* block_rootfs.c reuses this file with the device named "rootfs" (rumprun's name, as urunc passes it). */
#ifndef BLOCK_RW_NAME
#define BLOCK_RW_NAME "storage"
#endif
HVT_MANIFEST(HVT_BLOCK(BLOCK_RW_NAME));

#define MAX_BLOCK 32768u

static uint8_t wbuf[MAX_BLOCK] __attribute__((aligned(4096)));
static uint8_t rbuf[MAX_BLOCK] __attribute__((aligned(4096)));
static uint8_t poison[MAX_BLOCK] __attribute__((aligned(4096)));

static int fails;

static uint32_t pattern_state(uint32_t seed, uint64_t block) {
  uint32_t s = (seed * 0x9E3779B1u) ^ ((uint32_t)(block + 1) * 0x85EBCA6Bu);
  return s ? s : 0x6B43A9B5u;
}

/*
 * Block `block` of the pattern of `seed`, len bytes (a multiple of 4), into a
 * 4-byte aligned buffer. Guest code runs slowly on some hosts (PVM), so the
 * pattern is produced and checked a word at a time.
 */
static void pattern(uint8_t *buf, uint32_t len, uint32_t seed, uint64_t block) {
  uint32_t s = pattern_state(seed, block);
  uint32_t *w = (uint32_t *)buf;
  for (uint32_t i = 0; i < len / 4; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    w[i] = s; /* x86 is little-endian, as the pattern is defined */
  }
}

/* Index of the first byte of buf that differs from the pattern, or -1. */
static int64_t pattern_diff(const uint8_t *buf, uint32_t len, uint32_t seed, uint64_t block) {
  uint32_t s = pattern_state(seed, block);
  const uint32_t *w = (const uint32_t *)buf;
  for (uint32_t i = 0; i < len / 4; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    if (w[i] != s) {
      uint32_t x = w[i] ^ s;
      int64_t k = 0;
      while (!(x & 0xFF)) { x >>= 8; k++; }
      return (int64_t)i * 4 + k;
    }
  }
  return -1;
}

static void fail(const char *what, uint64_t a, uint64_t b) {
  hvt_printf("block_rw: FAIL %s (0x%lx, 0x%lx)\n", what, a, b);
  fails++;
}

static void expect_ret(const char *what, int got, int want, uint64_t detail) {
  if (got != want) {
    hvt_printf("block_rw: FAIL %s (0x%lx): ret=%d, expected %d\n", what, detail, got, want);
    fails++;
  }
}

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

/* Index of the first differing byte, or -1 (8 bytes at a time). */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t len) {
  uint64_t i = 0;
  for (; i + 8 <= len; i += 8)
    if (*(const u64_unaligned *)(a + i) != *(const u64_unaligned *)(b + i)) break;
  for (; i < len; i++)
    if (a[i] != b[i]) return (int64_t)i;
  return -1;
}

/* Reads every block and compares it with the pattern; returns the number of bad blocks. */
static uint64_t verify_all(uint64_t h, uint64_t bs, uint64_t nblocks, uint32_t seed) {
  uint64_t bad = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    /* Make the first word wrong, so a read that transfers nothing fails. */
    uint32_t first = pattern_state(seed, b);
    first ^= first << 13;
    first ^= first >> 17;
    first ^= first << 5;
    *(uint32_t *)rbuf = ~first;
    int r = hvt_block_read(h, b * bs, rbuf, bs);
    if (r != HVT_OK) {
      if (bad++ < 4) expect_ret("read block", r, HVT_OK, b);
      continue;
    }
    int64_t d = pattern_diff(rbuf, (uint32_t)bs, seed, b);
    if (d >= 0) {
      if (bad++ < 4) fail("block content differs (block, byte)", b, (uint64_t)d);
    }
  }
  if (bad) {
    hvt_printf("block_rw: FAIL %lu of %lu blocks bad\n", bad, nblocks);
    fails++;
  }
  return bad;
}

struct einval_case {
  const char *what;
  uint64_t handle, offset, len;
};

static void edge_cases(uint64_t h, uint64_t cap, uint64_t bs, uint64_t nblocks, uint32_t seed) {
  const uint64_t last = cap - bs;
  int r;

  /* The last block, explicitly: rewrite and read it back at capacity - bs. */
  pattern(wbuf, (uint32_t)bs, seed, nblocks - 1);
  expect_ret("write last block", hvt_block_write(h, last, wbuf, bs), HVT_OK, last);
  memset(rbuf, 0x5A, bs);
  expect_ret("read last block", hvt_block_read(h, last, rbuf, bs), HVT_OK, last);
  if (first_diff(rbuf, wbuf, bs) >= 0) fail("last block content", last, bs);

  /* Unaligned and partial transfers are the bindings' business, not the tender's. */
  memset(rbuf, 0x5A, 64);
  expect_ret("read 1 byte at capacity-1", hvt_block_read(h, cap - 1, rbuf, 1), HVT_OK, cap - 1);
  if (rbuf[0] != wbuf[bs - 1] || rbuf[1] != 0x5A) fail("byte at capacity-1", rbuf[0], wbuf[bs - 1]);
  expect_ret("read len 0 at offset 0", hvt_block_read(h, 0, rbuf, 0), HVT_OK, 0);
  expect_ret("write len 0 at offset 0", hvt_block_write(h, 0, poison, 0), HVT_OK, 0);
  pattern(wbuf, (uint32_t)bs, seed, 0);
  memset(rbuf, 0x5A, 64);
  expect_ret("read 37 bytes at offset 100", hvt_block_read(h, 100, rbuf, 37), HVT_OK, 100);
  if (first_diff(rbuf, wbuf + 100, 37) >= 0 || rbuf[37] != 0x5A) fail("37 bytes at offset 100", 100, 37);
  if (nblocks >= 2) {
    /* Straddling blocks 0 and 1. */
    memset(rbuf, 0x5A, 64);
    expect_ret("read 6 bytes at bs-3", hvt_block_read(h, bs - 3, rbuf, 6), HVT_OK, bs - 3);
    uint8_t want[6];
    memcpy(want, wbuf + bs - 3, 3);
    pattern(wbuf, (uint32_t)bs, seed, 1);
    memcpy(want + 3, wbuf, 3);
    if (first_diff(rbuf, want, 6) >= 0 || rbuf[6] != 0x5A) fail("6 bytes straddling blocks 0/1", bs - 3, 6);
    /* Unaligned write into block 1, read back, then restore block 1. */
    expect_ret("write 3 bytes at bs+5", hvt_block_write(h, bs + 5, "xyz", 3), HVT_OK, bs + 5);
    memset(rbuf, 0x5A, bs);
    expect_ret("read block 1", hvt_block_read(h, bs, rbuf, bs), HVT_OK, bs);
    memcpy(wbuf + 5, "xyz", 3);
    if (first_diff(rbuf, wbuf, bs) >= 0) fail("block 1 after 3-byte write", bs + 5, 3);
    pattern(wbuf, (uint32_t)bs, seed, 1);
    expect_ret("restore block 1", hvt_block_write(h, bs, wbuf, bs), HVT_OK, bs);
  }
  /* Unaligned write ending exactly at capacity, then restore the last block. */
  expect_ret("write 2 bytes at capacity-2", hvt_block_write(h, cap - 2, "!!", 2), HVT_OK, cap - 2);
  memset(rbuf, 0x5A, 64);
  expect_ret("read 4 bytes at capacity-4", hvt_block_read(h, cap - 4, rbuf, 4), HVT_OK, cap - 4);
  if (rbuf[2] != '!' || rbuf[3] != '!') fail("2 bytes at capacity-2", rbuf[2], rbuf[3]);
  pattern(wbuf, (uint32_t)bs, seed, nblocks - 1);
  expect_ret("restore last block", hvt_block_write(h, last, wbuf, bs), HVT_OK, last);

  /* Everything below must be EINVAL and must not touch the disk. */
  const struct einval_case cases[] = {
    { "offset == capacity", h, cap, bs },
    { "offset == capacity, len 0", h, cap, 0 },
    { "offset == capacity + bs", h, cap + bs, bs },
    { "last block + 1 byte", h, last + 1, bs },
    { "2 bytes at capacity-1", h, cap - 1, 2 },
    { "len capacity+1 at 0", h, 0, cap + 1 },
    { "offset 2^64-bs", h, 0 - bs, bs },
    { "offset 2^63", h, 1ull << 63, bs },
    { "offset 2^64-1, len 1", h, ~0ull, 1 },
    { "len 2^63", h, 0, 1ull << 63 },
    { "len 2^64-1", h, 0, ~0ull },
    { "len 2^64-bs at bs (wraps to 0)", h, bs, 0 - bs },
    { "len 2^63-1 at capacity-1", h, cap - 1, (1ull << 63) - 1 },
    { "handle 0 (reserved entry)", 0, 0, bs },
    { "handle 2", 2, 0, bs },
    { "handle 1000", 1000, 0, bs },
    { "handle 2^32+h", (1ull << 32) + h, 0, bs },
    { "handle 2^63", 1ull << 63, 0, bs },
    { "handle 2^64-1", ~0ull, 0, bs },
  };
  memset(poison, 0xEE, bs);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct einval_case *c = &cases[i];
    r = hvt_block_write(c->handle, c->offset, poison, c->len);
    if (r != HVT_EINVAL) {
      hvt_printf("block_rw: FAIL write %s: ret=%d, expected 2\n", c->what, r);
      fails++;
    }
    rbuf[0] = rbuf[bs - 1] = 0x5A;
    r = hvt_block_read(c->handle, c->offset, rbuf, c->len);
    if (r != HVT_EINVAL) {
      hvt_printf("block_rw: FAIL read %s: ret=%d, expected 2\n", c->what, r);
      fails++;
    } else if (rbuf[0] != 0x5A || rbuf[bs - 1] != 0x5A) {
      hvt_printf("block_rw: FAIL read %s: EINVAL but the buffer changed\n", c->what);
      fails++;
    }
  }
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char mode[16], num[24];
  int64_t seed = 1;
  hvt_next_word(&cmdline, mode, sizeof mode);
  if (mode[0] >= '0' && mode[0] <= '9') {
    if (hvt_parse_i64(mode, &seed) != 0) seed = -1;
    memcpy(mode, "rw", 3);
  } else if (hvt_next_word(&cmdline, num, sizeof num) && hvt_parse_i64(num, &seed) != 0) {
    seed = -1;
  }
  if (mode[0] == '\0') memcpy(mode, "rw", 3);
  if (seed < 0 || seed > 0xFFFFFFFFll || (strcmp(mode, "rw") != 0 && strcmp(mode, "verify") != 0)) {
    hvt_puts("usage: block_rw.hvt [rw|verify] [SEED]\n");
    return 2;
  }

  hvt_touch(wbuf, sizeof wbuf);
  hvt_touch(rbuf, sizeof rbuf);
  hvt_touch(poison, sizeof poison);

  int hi = hvt_mft_find(BLOCK_RW_NAME, HVT_MFT_BLOCK_BASIC);
  if (hi < 0) {
    hvt_puts("block_rw: FAIL no block device 'storage' in the manifest copy\n");
    return 1;
  }
  const struct hvt_mft_entry *e = &hvt_mft()->e[hi];
  const uint64_t h = (uint64_t)hi;
  const uint64_t cap = e->u.block.capacity;
  const uint64_t bs = e->u.block.block_size;
  hvt_printf("block_rw: handle=%lu capacity=%lu block_size=%lu attached=%u\n", h, cap, bs,
             (unsigned)e->attached);
  if (!e->attached || bs < 512 || bs > MAX_BLOCK || (bs & (bs - 1)) != 0 || cap < bs || cap % bs != 0) {
    hvt_puts("block_rw: FAIL implausible manifest entry\n");
    return 1;
  }
  const uint64_t nblocks = cap / bs;
  const uint32_t s = (uint32_t)seed;

  if (strcmp(mode, "verify") == 0) {
    verify_all(h, bs, nblocks, s);
    if (fails) return 1;
    hvt_printf("block_rw: verified %lu blocks\n", nblocks);
    hvt_puts("block_rw: ok\n");
    return 0;
  }

  uint64_t wrote = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    pattern(wbuf, (uint32_t)bs, s, b);
    int r = hvt_block_write(h, b * bs, wbuf, bs);
    if (r == HVT_OK) wrote++;
    else if (wrote + 4 > b) expect_ret("write block", r, HVT_OK, b);
  }
  if (wrote != nblocks) {
    hvt_printf("block_rw: FAIL wrote only %lu of %lu blocks\n", wrote, nblocks);
    fails++;
  }
  verify_all(h, bs, nblocks, s);
  edge_cases(h, cap, bs, nblocks, s);
  /* Nothing above may have left the disk different from the pattern. */
  verify_all(h, bs, nblocks, s);
  if (fails) {
    hvt_printf("block_rw: %d failures\n", fails);
    return 1;
  }
  hvt_printf("block_rw: wrote and verified %lu blocks\n", nblocks);
  hvt_puts("block_rw: ok\n");
  return 0;
}
