/*
 * block_two: two block devices, "first" and "second" (for --disk, which must
 * refuse a manifest with several block devices, and for attaching several
 * devices by name). Usage: block_two.hvt [SEED]   (default 2)
 *
 * Prints "NAME handle=H capacity=C block_size=B" for each, writes block 0 of
 * "first" with the pattern of SEED and block 0 of "second" with the pattern
 * of SEED+1 (as in block_rw.c), reads both back, prints "block_two: ok".
 */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("first"), HVT_BLOCK("second"));

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

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char num[24];
  int64_t seed = 2;
  if (hvt_next_word(&cmdline, num, sizeof num) && (hvt_parse_i64(num, &seed) != 0 || seed < 0)) {
    hvt_puts("usage: block_two.hvt [SEED]\n");
    return 2;
  }
  hvt_touch(wbuf, sizeof wbuf);
  hvt_touch(rbuf, sizeof rbuf);
  static const char *const names[2] = { "first", "second" };
  uint64_t h[2], bs[2];
  for (int i = 0; i < 2; i++) {
    int hi = hvt_mft_find(names[i], HVT_MFT_BLOCK_BASIC);
    if (hi < 0) return 1;
    const struct hvt_mft_entry *e = &hvt_mft()->e[hi];
    h[i] = (uint64_t)hi;
    bs[i] = e->u.block.block_size;
    hvt_printf("%s handle=%d capacity=%lu block_size=%lu\n", names[i], hi, e->u.block.capacity, bs[i]);
    if (!e->attached || bs[i] < 512 || bs[i] > MAX_BLOCK || e->u.block.capacity < bs[i]) {
      hvt_printf("block_two: FAIL %s implausible manifest entry\n", names[i]);
      return 1;
    }
  }
  int fails = 0;
  for (int i = 0; i < 2; i++) {
    pattern(wbuf, (uint32_t)bs[i], (uint32_t)seed + (uint32_t)i, 0);
    int r = hvt_block_write(h[i], 0, wbuf, bs[i]);
    if (r != HVT_OK) { hvt_printf("block_two: FAIL write %s: ret=%d\n", names[i], r); fails++; }
  }
  for (int i = 0; i < 2; i++) {
    pattern(wbuf, (uint32_t)bs[i], (uint32_t)seed + (uint32_t)i, 0);
    memset(rbuf, 0x5A, bs[i]);
    int r = hvt_block_read(h[i], 0, rbuf, bs[i]);
    if (r != HVT_OK || memcmp(rbuf, wbuf, bs[i]) != 0) {
      hvt_printf("block_two: FAIL read %s: ret=%d\n", names[i], r);
      fails++;
    }
  }
  if (fails) return 1;
  hvt_puts("block_two: ok\n");
  return 0;
}
