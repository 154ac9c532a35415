/* net_handles: NET_READ / NET_WRITE / POLL against a manifest that also holds
 * a block device (docs/abi.md §9.4, §10.3, §10.6, §10.7). Entries: 1 = "service"
 * (NET_BASIC), 2 = "disk" (BLOCK_BASIC), so entries = 3.
 *
 * Prints one line per check, "NAME: got=R want=W ok|FAIL", then
 * "net_handles: N failed" and exits with N (0 when all is well).
 */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("service"), HVT_BLOCK("disk"));

static uint8_t buf[2048];
static int failed;

static void check(const char *what, int got, int want) {
  hvt_printf("%s: got=%d want=%d %s\n", what, got, want, got == want ? "ok" : "FAIL");
  if (got != want) failed++;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  (void)cmdline;
  hvt_touch(buf, sizeof buf);
  const int net = hvt_mft_find("service", HVT_MFT_NET_BASIC);
  const int disk = hvt_mft_find("disk", HVT_MFT_BLOCK_BASIC);
  if (net != 1 || disk != 2) hvt_abort("unexpected manifest order");
  memset(buf, 0xff, 6);
  memcpy(buf + 6, hvt_mft()->e[net].u.net.mac, 6);
  buf[12] = 0x88;
  buf[13] = 0xb5;

  uint64_t len = sizeof buf;
  check("net-read block handle", hvt_net_read((uint64_t)disk, buf, &len), HVT_EINVAL);
  check("net-write block handle", hvt_net_write((uint64_t)disk, buf, 60), HVT_EINVAL);
  len = sizeof buf;
  check("net-read handle 0", hvt_net_read(0, buf, &len), HVT_EINVAL);
  check("net-write handle 0", hvt_net_write(0, buf, 60), HVT_EINVAL);
  len = sizeof buf;
  check("net-read handle 3", hvt_net_read(3, buf, &len), HVT_EINVAL);
  check("net-write handle 3", hvt_net_write(3, buf, 60), HVT_EINVAL);
  len = sizeof buf;
  check("net-read handle 2^32+1", hvt_net_read((1ull << 32) | 1, buf, &len), HVT_EINVAL);
  check("net-write handle 2^63+1", hvt_net_write((1ull << 63) | 1, buf, 60), HVT_EINVAL);
  /* Block I/O on the net handle is refused too. */
  check("block-read net handle", hvt_block_read((uint64_t)net, 0, buf, 512), HVT_EINVAL);
  check("block-write net handle", hvt_block_write((uint64_t)net, 0, buf, 512), HVT_EINVAL);
  /* The net device itself works: nothing pending, then one frame out. */
  len = 777;
  int r = hvt_net_read((uint64_t)net, buf, &len);
  check("net-read service empty", r, HVT_AGAIN);
  check("net-read AGAIN keeps len", (int)len, 777);
  check("net-write service", hvt_net_write((uint64_t)net, buf, 60), HVT_OK);
  /* POLL never reports the block device; with no input it times out. */
  uint64_t rs = ~0ull;
  check("poll 1ms ret", hvt_poll(1000000, &rs), 0);
  check("poll 1ms ready_set", (int)rs, 0);
  hvt_printf("net_handles: %d failed\n", failed);
  return failed;
}
