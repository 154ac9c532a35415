/*
 * block_63: the largest manifest a tender accepts, 63 block devices d1..d63
 * (docs/abi.md §4.1). Usage: block_63.hvt [SEED]   (default 6300)
 *
 * For every device dI it prints "dI handle=H capacity=C block_size=B", then
 * writes block 0 with the pattern of seed SEED+I and the last block with the
 * pattern of seed SEED+I+1000 (pattern as in block_rw.c, blocks numbered as
 * on the device). Only after all writes does it read every device back, so a
 * write that went to the wrong backing file shows up. Prints "block_63: ok"
 * and exits 0, or "block_63: FAIL ..." lines and exits 1.
 */
#include "hvt.h"

HVT_MANIFEST(
  HVT_BLOCK("d1"), HVT_BLOCK("d2"), HVT_BLOCK("d3"), HVT_BLOCK("d4"), HVT_BLOCK("d5"),
  HVT_BLOCK("d6"), HVT_BLOCK("d7"), HVT_BLOCK("d8"), HVT_BLOCK("d9"), HVT_BLOCK("d10"),
  HVT_BLOCK("d11"), HVT_BLOCK("d12"), HVT_BLOCK("d13"), HVT_BLOCK("d14"), HVT_BLOCK("d15"),
  HVT_BLOCK("d16"), HVT_BLOCK("d17"), HVT_BLOCK("d18"), HVT_BLOCK("d19"), HVT_BLOCK("d20"),
  HVT_BLOCK("d21"), HVT_BLOCK("d22"), HVT_BLOCK("d23"), HVT_BLOCK("d24"), HVT_BLOCK("d25"),
  HVT_BLOCK("d26"), HVT_BLOCK("d27"), HVT_BLOCK("d28"), HVT_BLOCK("d29"), HVT_BLOCK("d30"),
  HVT_BLOCK("d31"), HVT_BLOCK("d32"), HVT_BLOCK("d33"), HVT_BLOCK("d34"), HVT_BLOCK("d35"),
  HVT_BLOCK("d36"), HVT_BLOCK("d37"), HVT_BLOCK("d38"), HVT_BLOCK("d39"), HVT_BLOCK("d40"),
  HVT_BLOCK("d41"), HVT_BLOCK("d42"), HVT_BLOCK("d43"), HVT_BLOCK("d44"), HVT_BLOCK("d45"),
  HVT_BLOCK("d46"), HVT_BLOCK("d47"), HVT_BLOCK("d48"), HVT_BLOCK("d49"), HVT_BLOCK("d50"),
  HVT_BLOCK("d51"), HVT_BLOCK("d52"), HVT_BLOCK("d53"), HVT_BLOCK("d54"), HVT_BLOCK("d55"),
  HVT_BLOCK("d56"), HVT_BLOCK("d57"), HVT_BLOCK("d58"), HVT_BLOCK("d59"), HVT_BLOCK("d60"),
  HVT_BLOCK("d61"), HVT_BLOCK("d62"), HVT_BLOCK("d63")
);

#define NDEV 63
#define MAX_BLOCK 32768u

static uint8_t wbuf[MAX_BLOCK] __attribute__((aligned(4096)));
static uint8_t rbuf[MAX_BLOCK] __attribute__((aligned(4096)));

static uint32_t pattern_state(uint32_t seed, uint64_t block) {
  uint32_t s = (seed * 0x9E3779B1u) ^ ((uint32_t)(block + 1) * 0x85EBCA6Bu);
  return s ? s : 0x6B43A9B5u;
}

static void pattern(uint8_t *buf, uint32_t len, uint32_t seed, uint64_t block) {
  uint32_t s = pattern_state(seed, block);
  for (uint32_t i = 0; i < len; i += 4) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    buf[i] = (uint8_t)s;
    buf[i + 1] = (uint8_t)(s >> 8);
    buf[i + 2] = (uint8_t)(s >> 16);
    buf[i + 3] = (uint8_t)(s >> 24);
  }
}

static void dev_name(char *out, unsigned i) {
  out[0] = 'd';
  if (i >= 10) {
    out[1] = (char)('0' + i / 10);
    out[2] = (char)('0' + i % 10);
    out[3] = '\0';
  } else {
    out[1] = (char)('0' + i);
    out[2] = '\0';
  }
}

struct dev {
  uint64_t handle, cap, bs;
};

static struct dev devs[NDEV + 1];

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char num[24];
  int64_t seed = 6300;
  if (hvt_next_word(&cmdline, num, sizeof num) && (hvt_parse_i64(num, &seed) != 0 || seed < 0)) {
    hvt_puts("usage: block_63.hvt [SEED]\n");
    return 2;
  }
  hvt_touch(wbuf, sizeof wbuf);
  hvt_touch(rbuf, sizeof rbuf);
  int fails = 0;

  for (unsigned i = 1; i <= NDEV; i++) {
    char name[4];
    dev_name(name, i);
    int h = hvt_mft_find(name, HVT_MFT_BLOCK_BASIC);
    if (h < 0) {
      hvt_printf("block_63: FAIL %s not in the manifest copy\n", name);
      return 1;
    }
    const struct hvt_mft_entry *e = &hvt_mft()->e[h];
    struct dev *d = &devs[i];
    d->handle = (uint64_t)h;
    d->cap = e->u.block.capacity;
    d->bs = e->u.block.block_size;
    hvt_printf("%s handle=%d capacity=%lu block_size=%lu\n", name, h, d->cap, d->bs);
    if (!e->attached || d->bs < 512 || d->bs > MAX_BLOCK || d->cap < d->bs || d->cap % d->bs) {
      hvt_printf("block_63: FAIL %s implausible manifest entry\n", name);
      return 1;
    }
  }

  for (unsigned i = 1; i <= NDEV; i++) {
    const struct dev *d = &devs[i];
    const uint64_t nb = d->cap / d->bs;
    pattern(wbuf, (uint32_t)d->bs, (uint32_t)seed + i, 0);
    int r = hvt_block_write(d->handle, 0, wbuf, d->bs);
    if (r != HVT_OK) { hvt_printf("block_63: FAIL write d%u block 0: ret=%d\n", i, r); fails++; }
    if (nb > 1) {
      pattern(wbuf, (uint32_t)d->bs, (uint32_t)seed + i + 1000, nb - 1);
      r = hvt_block_write(d->handle, d->cap - d->bs, wbuf, d->bs);
      if (r != HVT_OK) { hvt_printf("block_63: FAIL write d%u last block: ret=%d\n", i, r); fails++; }
    }
  }

  for (unsigned i = 1; i <= NDEV; i++) {
    const struct dev *d = &devs[i];
    const uint64_t nb = d->cap / d->bs;
    for (int which = 0; which < (nb > 1 ? 2 : 1); which++) {
      uint64_t blk = which ? nb - 1 : 0;
      memset(rbuf, 0x5A, d->bs);
      int r = hvt_block_read(d->handle, blk * d->bs, rbuf, d->bs);
      pattern(wbuf, (uint32_t)d->bs, (uint32_t)seed + i + (which ? 1000 : 0), blk);
      if (r != HVT_OK) {
        hvt_printf("block_63: FAIL read d%u block %lu: ret=%d\n", i, blk, r);
        fails++;
      } else if (memcmp(rbuf, wbuf, d->bs) != 0) {
        hvt_printf("block_63: FAIL d%u block %lu content differs\n", i, blk);
        fails++;
      }
    }
  }
  if (fails) return 1;
  hvt_puts("block_63: ok\n");
  return 0;
}
