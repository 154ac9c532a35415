/* net_hostile: misuses NET_READ / NET_WRITE in the way the first
 * command-line word asks (docs/abi.md §9.3, §10.6, §10.7). One NET_BASIC device
 * "service". Each mode prints "mode: NAME" and, for the modes the tender
 * must refuse, "expect: gpa=0x.. sz=N" with the region the tender should
 * name in `Invalid guest access: gpa=0x.., sz=N` (exit 1). If the guest
 * survives such a mode it prints "survived ret=N" and exits 2.
 *
 * top = bi->mem_size; [top, top + 2 MiB) is the hidden ring reservation
 * (mapped, but outside the memory hypercalls may name, docs/abi.md §13.2).
 *   read-struct-outside    NET_READ struct at top-16               gpa=top-16 sz=32
 *   write-struct-outside   NET_WRITE struct at top                 gpa=top sz=32
 *   read-data-outside      NET_READ data top+0x1000 (ring), 1514   gpa=top+0x1000 sz=1514
 *   write-data-outside     NET_WRITE data top+2 MiB, 64            gpa=top+0x200000 sz=64
 *   read-data-straddle     NET_READ data top-100, 1514             gpa=top-100 sz=1514
 *   read-end-at-memsize    NET_READ data top-1514, 1514 (end = top; rejected, §9.3)
 *   write-len-wrap         NET_WRITE data 0x200000, len 2^64-0x100 (wraps)
 *   read-len-huge          NET_READ data 0x200000, len 2^40
 * Control modes (exit 0 and print "survived ret=N" when the tender is right):
 *   read-bad-handle-data-outside  handle 0 and data outside: the handle is
 *                          checked first, so ret=2 (EINVAL), not fatal
 *   write-ok               prints "mac=.. mtu=N", then writes a valid 60-byte
 *                          frame (broadcast, from mac, ethertype 0x88b5,
 *                          payload bytes 14..59 = their offset): ret=0
 *   poll-wait              prints "polling", then POLLs with a one-hour
 *                          timeout; prints "poll: ret=N ready=0x.." and exits
 *                          0 if the service device (bit 1) woke it, else 2.
 *                          (For input-wakes-POLL and signal-during-POLL tests.)
 */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("service"));

static volatile struct hvt_hc_net_io io;
static uint8_t frame[64];

static void expect(uint64_t gpa, uint64_t sz) {
  hvt_printf("expect: gpa=0x%lx sz=%lu\n", gpa, sz);
}

static int net_io(unsigned nr, uint64_t handle, uint64_t data, uint64_t len) {
  io.handle = handle;
  io.data = data;
  io.len = len;
  io.ret = -1;
  hvt_hypercall(nr, &io);
  return io.ret;
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  char mode[48];
  hvt_next_word(&cmdline, mode, sizeof mode);
  hvt_printf("mode: %s\n", mode);
  const uint64_t top = bi->mem_size;
  const int h = hvt_mft_find("service", HVT_MFT_NET_BASIC);
  if (h != 1) hvt_abort("service is not manifest entry 1");
  hvt_touch(frame, sizeof frame);
  memset(frame, 0xff, 6);
  memcpy(frame + 6, hvt_mft()->e[h].u.net.mac, 6);
  frame[12] = 0x88; /* local experimental ethertype */
  frame[13] = 0xb5;
  const uint64_t okbuf = (uint64_t)(uintptr_t)frame;
  int ret = -1, want = -1;

  if (strcmp(mode, "read-struct-outside") == 0) {
    expect(top - 16, 32);
    hvt_outl(HVT_PORT_BASE + HVT_HC_NET_READ, (uint32_t)(top - 16));
  } else if (strcmp(mode, "write-struct-outside") == 0) {
    expect(top, 32);
    hvt_outl(HVT_PORT_BASE + HVT_HC_NET_WRITE, (uint32_t)top);
  } else if (strcmp(mode, "read-data-outside") == 0) {
    expect(top + 0x1000, 1514);
    ret = net_io(HVT_HC_NET_READ, 1, top + 0x1000, 1514);
  } else if (strcmp(mode, "write-data-outside") == 0) {
    expect(top + 0x200000, 64);
    ret = net_io(HVT_HC_NET_WRITE, 1, top + 0x200000, 64);
  } else if (strcmp(mode, "read-data-straddle") == 0) {
    expect(top - 100, 1514);
    ret = net_io(HVT_HC_NET_READ, 1, top - 100, 1514);
  } else if (strcmp(mode, "read-end-at-memsize") == 0) {
    expect(top - 1514, 1514);
    ret = net_io(HVT_HC_NET_READ, 1, top - 1514, 1514);
  } else if (strcmp(mode, "write-len-wrap") == 0) {
    expect(0x200000, 0 - 0x100ull);
    ret = net_io(HVT_HC_NET_WRITE, 1, 0x200000, 0 - 0x100ull);
  } else if (strcmp(mode, "read-len-huge") == 0) {
    expect(0x200000, 1ull << 40);
    ret = net_io(HVT_HC_NET_READ, 1, 0x200000, 1ull << 40);
  } else if (strcmp(mode, "read-bad-handle-data-outside") == 0) {
    want = HVT_EINVAL;
    ret = net_io(HVT_HC_NET_READ, 0, top + 0x1000, 1514);
  } else if (strcmp(mode, "poll-wait") == 0) {
    uint64_t rs = 0;
    hvt_puts("polling\n");
    int n = hvt_poll(3600ull * 1000000000ull, &rs);
    hvt_printf("poll: ret=%d ready=0x%lx\n", n, rs);
    return n == 1 && rs == 2 ? 0 : 2;
  } else if (strcmp(mode, "write-ok") == 0) {
    want = HVT_OK;
    const uint8_t *mac = hvt_mft()->e[h].u.net.mac;
    hvt_printf("mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u\n", mac[0], mac[1], mac[2], mac[3], mac[4],
               mac[5], hvt_mft()->e[h].u.net.mtu);
    for (unsigned i = 14; i < 60; i++) frame[i] = (uint8_t)i;
    ret = net_io(HVT_HC_NET_WRITE, 1, okbuf, 60);
  } else {
    hvt_printf("net_hostile: unknown mode '%s'\n", mode);
    return 1;
  }
  hvt_printf("survived ret=%d\n", ret);
  return want >= 0 && ret == want ? 0 : 2;
}
