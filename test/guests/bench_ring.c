/* bench_ring: the guest-side cost of one net operation, ring against
 * hypercall, on an idle tap: N NET_READs that find nothing (AGAIN) and N
 * 60-byte NET_WRITEs, each way, timed with the TSC. Usage:
 *   bench_ring.hvt N
 * Prints "bench_ring: ring=0|1 read_hc_ns=.. read_ring_ns=.. write_hc_ns=.. write_ring_ns=..".
 * (With the ring not offered the ring figures are hypercalls too.) */
#include "hvt.h"
#include "ring.h"

HVT_MANIFEST(HVT_NET("service"));

static uint8_t buf[2048] __attribute__((aligned(64)));

static uint64_t per_op(uint64_t t0, uint64_t n) {
  uint64_t dt = hvt_monotonic_ns() - t0;
  return n ? dt / n : 0;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  int64_t n = 1000;
  if (*cmdline && (hvt_parse_i64(cmdline, &n) != 0 || n <= 0)) return 2;
  int ring = hvt_ring_init(bi);
  uint64_t h = (uint64_t)hvt_mft_find("service", HVT_MFT_NET_BASIC);
  hvt_touch(buf, sizeof buf);
  memset(buf, 0xff, 12);
  buf[12] = 0x88; buf[13] = 0xb5;
  uint64_t t = hvt_monotonic_ns();
  for (int64_t i = 0; i < n; i++) { uint64_t len = sizeof buf; hvt_net_read(h, buf + 64, &len); }
  uint64_t rh = per_op(t, (uint64_t)n);
  t = hvt_monotonic_ns();
  for (int64_t i = 0; i < n; i++) { size_t got; hvt_s5_net_read(h, buf + 64, 1514, &got); }
  uint64_t rr = per_op(t, (uint64_t)n);
  t = hvt_monotonic_ns();
  for (int64_t i = 0; i < n; i++) hvt_net_write(h, buf, 60);
  uint64_t wh = per_op(t, (uint64_t)n);
  t = hvt_monotonic_ns();
  for (int64_t i = 0; i < n; i++) hvt_s5_net_write(h, buf, 60);
  uint64_t wr = per_op(t, (uint64_t)n);
  hvt_printf("bench_ring: ring=%d read_hc_ns=%lu read_ring_ns=%lu write_hc_ns=%lu write_ring_ns=%lu\n", ring, rh, rr, wh, wr);
  return 0;
}
