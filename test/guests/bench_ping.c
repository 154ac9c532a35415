/*
 * bench_ping: the smallest ARP + ICMP echo responder we can write, for the
 * round-trip bench. Usage: bench_ping.hvt A.B.C.D
 * Guest instructions are slow on some hosts (PVM emulates a CPL-0 guest), so
 * it does the least work per packet: no checksum verification, the echo
 * reply is the request with addresses swapped and the ICMP checksum
 * adjusted for the type change (RFC 1624), sent from the receive buffer.
 * Frames go through the Solo5 bindings' net functions (runtime/ring.c):
 * the shared ring when the tender offers it, else the hypercalls, so one
 * guest measures both (bench/net.mjs: --net-ring=on|off).
 */
#include "hvt.h"
#include "ring.h"

HVT_MANIFEST(HVT_NET("service"));

static uint8_t frame[2048] __attribute__((aligned(64)));
static uint8_t ip_addr[4];
static uint8_t mac[6];

static int parse_ip(const char *s) {
  for (int i = 0; i < 4; i++) {
    unsigned v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) { v = v * 10 + (unsigned)(*s++ - '0'); digits++; }
    if (!digits || v > 255) return -1;
    ip_addr[i] = (uint8_t)v;
    if (i < 3 && *s++ != '.') return -1;
  }
  return 0;
}

static void swap(uint8_t *a, uint8_t *b, int n) {
  for (int i = 0; i < n; i++) { uint8_t t = a[i]; a[i] = b[i]; b[i] = t; }
}

static void answer(uint64_t handle, uint64_t len) {
  uint8_t *eth = frame, *p = frame + 14;
  uint16_t type = (uint16_t)(eth[12] << 8 | eth[13]);
  if (type == 0x0806 && len >= 42 && p[7] == 1 && memcmp(p + 24, ip_addr, 4) == 0) {
    memcpy(eth, p + 8, 6);          /* to the asker */
    memcpy(eth + 6, mac, 6);
    p[7] = 2;                       /* reply */
    memcpy(p + 18, p + 8, 10);      /* tha, tpa = sha, spa */
    memcpy(p + 8, mac, 6);
    memcpy(p + 14, ip_addr, 4);
    hvt_s5_net_write(handle, frame, 42);
  } else if (type == 0x0800 && len >= 42 && p[9] == 1 && memcmp(p + 16, ip_addr, 4) == 0) {
    uint8_t *icmp = p + (p[0] & 15) * 4;
    if (icmp[0] != 8) return;
    swap(eth, eth + 6, 6);
    swap(p + 12, p + 16, 4);        /* the IP header checksum is unchanged */
    icmp[0] = 0;                    /* echo reply: checksum + 0x0800 */
    uint32_t sum = (uint32_t)(icmp[2] << 8 | icmp[3]) + 0x0800;
    sum = (sum & 0xffff) + (sum >> 16);
    icmp[2] = (uint8_t)(sum >> 8);
    icmp[3] = (uint8_t)sum;
    hvt_s5_net_write(handle, frame, len);
  }
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  hvt_ring_init(bi);
  int64_t handle = hvt_mft_find("service", HVT_MFT_NET_BASIC);
  if (handle < 0 || parse_ip(cmdline) != 0) {
    hvt_puts("usage: bench_ping.hvt A.B.C.D\n");
    return 2;
  }
  memcpy(mac, hvt_mft()->e[handle].u.net.mac, 6);
  hvt_touch(frame, sizeof frame);
  hvt_printf("bench_ping: ready\n");
  for (;;) {
    hvt_poll(1000000000ull, 0);
    for (;;) {
      size_t len = 0;
      if (hvt_s5_net_read((uint64_t)handle, frame, sizeof frame, &len) != HVT_OK) break;
      answer((uint64_t)handle, len);
    }
  }
}
