/*
 * block_reserved: a block device "storage" next to a manifest entry "rsvd"
 * of type RESERVED_FIRST+1. Such entries need no attachment (docs/abi.md §4.4) and
 * are not block devices, so BLOCK_READ/BLOCK_WRITE on its handle must give
 * EINVAL (§10.5 rule 2) while "storage" keeps working. Prints
 * "block_reserved: ok" and exits 0, or "block_reserved: FAIL ..." and 1.
 */
#include "hvt.h"

HVT_MANIFEST(HVT_BLOCK("storage"), HVT_DEVICE("rsvd", HVT_MFT_RESERVED_FIRST + 1));

static uint8_t buf[512] __attribute__((aligned(512)));

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  hvt_touch(buf, sizeof buf);
  int h = hvt_mft_find("storage", HVT_MFT_BLOCK_BASIC);
  int rh = hvt_mft_find("rsvd", HVT_MFT_RESERVED_FIRST + 1);
  hvt_printf("storage=%d rsvd=%d\n", h, rh);
  if (h != 1 || rh != 2) {
    hvt_puts("block_reserved: FAIL unexpected manifest copy\n");
    return 1;
  }
  int fails = 0;
  int r = hvt_block_write((uint64_t)rh, 0, buf, 512);
  if (r != HVT_EINVAL) { hvt_printf("block_reserved: FAIL write rsvd: ret=%d\n", r); fails++; }
  r = hvt_block_read((uint64_t)rh, 0, buf, 512);
  if (r != HVT_EINVAL) { hvt_printf("block_reserved: FAIL read rsvd: ret=%d\n", r); fails++; }
  memcpy(buf, "reserved ok", 11);
  r = hvt_block_write((uint64_t)h, 0, buf, 512);
  if (r != HVT_OK) { hvt_printf("block_reserved: FAIL write storage: ret=%d\n", r); fails++; }
  if (fails) return 1;
  hvt_puts("block_reserved: ok\n");
  return 0;
}
