/*
 * bench_block: N one-block BLOCK_READ or BLOCK_WRITE hypercalls on the only
 * block device of its manifest, "storage", for bench/. Usage:
 *   bench_block.hvt read|write N
 * Call i transfers block (i mod blocks) at offset (i mod blocks) * block_size;
 * writes store a constant 0x5a-filled block. Prints nothing on success (so
 * the console costs nothing); on a failed call or bad arguments it prints one
 * line and exits 2. Follows the hvt ABI only, so any Solo5-compatible tender
 * can run it for a side-by-side figure.
 */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("storage"));

static uint8_t buf[32768] __attribute__((aligned(4096)));

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char kind[16];
  char num[24];
  const char *p = cmdline;
  int64_t n;
  hvt_next_word(&p, kind, sizeof kind);
  hvt_next_word(&p, num, sizeof num);
  int write = strcmp(kind, "write") == 0;
  if (hvt_parse_i64(num, &n) != 0 || n < 0 || (!write && strcmp(kind, "read") != 0)) {
    hvt_puts("usage: bench_block.hvt read|write N\n");
    return 2;
  }
  const struct hvt_mft *m = hvt_mft();
  const uint64_t cap = m->e[1].u.block.capacity;
  const uint64_t bs = m->e[1].u.block.block_size;
  if (m->entries != 2 || bs < 512 || bs > sizeof buf || cap < bs) {
    hvt_puts("bench_block: unexpected manifest copy\n");
    return 2;
  }
  memset(buf, write ? 0x5a : 0, bs);
  const uint64_t blocks = cap / bs;
  uint64_t blk = 0;
  for (int64_t i = 0; i < n; i++) {
    int r = write ? hvt_block_write(1, blk * bs, buf, bs) : hvt_block_read(1, blk * bs, buf, bs);
    if (r != HVT_OK) {
      hvt_printf("bench_block: %s at offset %lu: ret=%d\n", kind, blk * bs, r);
      return 2;
    }
    if (++blk == blocks) blk = 0;
  }
  return 0;
}
