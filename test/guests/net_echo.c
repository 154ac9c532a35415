/* net_echo: a minimal ARP + ICMP echo responder over the NET_* hypercalls
 * (docs/abi.md §10.3, §10.6, §10.7, §12).
 *
 *   net_echo.hvt IP [N]         e.g. net_echo.hvt 10.77.0.2
 *
 * One NET_BASIC device "service". MAC and MTU come from the manifest copy,
 * the IPv4 address from the command line. Answers ARP requests for IP and
 * ICMP echo requests to IP (same id/seq/payload, recomputed IP and ICMP
 * checksums); requests whose IP header or ICMP checksum is wrong are counted
 * and dropped; everything else (IPv6, other addresses, fragments, ...) is
 * ignored. Exits 0 after a UDP datagram to IP port 9 whose payload starts
 * with "quit", or after N echo replies if N is given (N = 0: no limit).
 *
 * Before any traffic it checks and prints (one line each):
 *   PROG: dev=NAME handle=H mac=.. mtu=N ip=.. mem_size=N host_features=N
 *         net_ring=N attached=N        (one line per device; mtu as given)
 *   read-empty(NAME): AGAIN            NET_READ with nothing pending, len kept
 *                                      (else "ret=R len=L"; a frame is handled)
 *   poll-empty: ret=0 ready=0x0        POLL with a zero timeout
 *   wrong-handle 0x..: read=R write=W  NET_READ/NET_WRITE with bad handles
 *   PROG: ready
 * then serves: POLL (1 s timeout), then up to BATCH frames per device in
 * turn until every device says AGAIN. At the end it prints
 *   PROG: replies=N arp=N bad_checksums=N ignored=N poll_bogus=N
 *         poll_mismatch=N poll_spurious=N unflagged=N      (one line)
 *   dev NAME: replies=N
 * poll_bogus counts ready-set bits that are not net devices, poll_mismatch
 * POLLs whose ret differs from the number of bits set, poll_spurious devices
 * reported ready whose first NET_READ said AGAIN (must all be 0);
 * unflagged counts frames found on devices POLL did not report (a frame may
 * legitimately arrive between POLL and NET_READ).
 *
 * net_two.c reuses this file with two devices (it defines NET_ECHO_NAMES
 * and declares its own manifest); then the command line is "IPA IPB [N]".
 *
 * With NET_ECHO_RING defined (net_ring_echo.c, net_ring_two.c) every frame
 * goes through the Solo5 bindings' net functions (runtime/ring.c): the
 * shared ring when the tender offers it (docs/abi.md §13), else hypercalls.
 * The start-up line then also says ring=0|1, and before "ready" it prints
 *   ring-read-empty(NAME): ret=R len=L     a ring read with nothing pending
 *   ring-wrong-handle H: read=R write=W    ring entries with bad handles
 */
#include "hvt.h"
#ifdef NET_ECHO_RING
#include "ring.h"
#endif

#ifndef NET_ECHO_NAMES
HVT_MANIFEST(HVT_NET("service"));
#define NET_ECHO_NAMES "service"
#define NET_ECHO_PROG "net_echo"
#endif

static const char *const dev_names[] = { NET_ECHO_NAMES };
#define NDEV (sizeof dev_names / sizeof dev_names[0])

#define ETH_HLEN 14
#define MAX_FRAME (65535 + ETH_HLEN)
#define BATCH 16 /* frames read from one device before turning to the next */

struct dev {
  const char *name;
  uint64_t handle;
  uint8_t mac[6];
  uint32_t mtu;
  uint8_t ip[4];
  uint64_t replies;
};

static struct dev devs[NDEV];
static uint8_t rx[MAX_FRAME + 2] __attribute__((aligned(64)));
static uint8_t tx[64] __attribute__((aligned(64)));

static struct {
  uint64_t replies, arp, bad_checksums, ignored;
  uint64_t poll_bogus, poll_mismatch, poll_spurious, unflagged;
} st;

static uint64_t max_replies;
static int quit;

/* ---- byte order and checksums ---- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/*
 * Internet checksum of [p, p+n), 0 when a received header or message is
 * intact. The one's complement sum does not depend on byte order (RFC 1071),
 * so it adds native 32-bit words and swaps the folded result once: far fewer
 * guest instructions than a byte loop.
 */
typedef uint32_t u32_unaligned __attribute__((aligned(1), may_alias));

static uint16_t csum(const uint8_t *p, size_t n) {
  uint64_t sum = 0;
  for (; n >= 4; p += 4, n -= 4) sum += *(const u32_unaligned *)p;
  if (n >= 2) {
    sum += (uint32_t)(p[0] | p[1] << 8);
    p += 2;
    n -= 2;
  }
  if (n) sum += p[0];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t r = (uint16_t)~sum;
  return (uint16_t)(r >> 8 | r << 8);
}

/* Checksum field after one 16-bit word of the summed data changes from
 * `from` to `to` (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')). */
static uint16_t csum_update(uint16_t hc, uint16_t from, uint16_t to) {
  uint32_t sum = (uint16_t)~hc + (uint32_t)(uint16_t)~from + to;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static int popcount(uint64_t v) {
  int n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

static int parse_ip(const char *s, uint8_t ip[4]) {
  for (int i = 0; i < 4; i++) {
    unsigned v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) { v = v * 10 + (unsigned)(*s++ - '0'); digits++; }
    if (digits == 0 || v > 255) return -1;
    ip[i] = (uint8_t)v;
    if (i < 3 && *s++ != '.') return -1;
  }
  return *s ? -1 : 0;
}

/* ---- protocol handling ---- */

/* The frame I/O of the serving loop: the bindings' functions or plain hypercalls. */
static int echo_write(uint64_t handle, const void *frame, uint64_t len) {
#ifdef NET_ECHO_RING
  return hvt_s5_net_write(handle, frame, len);
#else
  return hvt_net_write(handle, frame, len);
#endif
}

static int echo_read(uint64_t handle, void *buf, uint64_t *len) {
#ifdef NET_ECHO_RING
  size_t got = 0;
  int r = hvt_s5_net_read(handle, buf, *len, &got);
  if (r == HVT_OK) *len = got;
  return r;
#else
  return hvt_net_read(handle, buf, len);
#endif
}

static void send_frame(struct dev *d, const void *frame, uint64_t len) {
  int r = echo_write(d->handle, frame, len);
  if (r != HVT_OK) {
    hvt_printf("%s: NET_WRITE(%s) returned %d\n", NET_ECHO_PROG, d->name, r);
    hvt_halt(3, 0);
  }
}

static void arp(struct dev *d, uint8_t *f, uint64_t len) {
  const uint8_t *a = f + ETH_HLEN;
  if (len < ETH_HLEN + 28 || get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 ||
      get16(a + 6) != 1 || memcmp(a + 24, d->ip, 4) != 0) {
    st.ignored++;
    return;
  }
  memset(tx, 0, sizeof tx);
  memcpy(tx, a + 8, 6);        /* to the sender's hardware address */
  memcpy(tx + 6, d->mac, 6);
  put16(tx + 12, 0x0806);
  uint8_t *r = tx + ETH_HLEN;
  put16(r, 1);
  put16(r + 2, 0x0800);
  r[4] = 6;
  r[5] = 4;
  put16(r + 6, 2);             /* reply */
  memcpy(r + 8, d->mac, 6);    /* sha */
  memcpy(r + 14, d->ip, 4);    /* spa */
  memcpy(r + 18, a + 8, 10);   /* tha, tpa = the request's sha, spa */
  send_frame(d, tx, 60);
  st.arp++;
}

static void ipv4(struct dev *d, uint8_t *f, uint64_t len) {
  uint8_t *ip = f + ETH_HLEN;
  if (len < ETH_HLEN + 20 || (ip[0] >> 4) != 4 || memcmp(ip + 16, d->ip, 4) != 0) {
    st.ignored++;
    return;
  }
  unsigned ihl = (ip[0] & 15u) * 4u;
  unsigned total = get16(ip + 2);
  if (ihl < 20 || total < ihl || total > len - ETH_HLEN || (get16(ip + 6) & 0x3fff) != 0) {
    st.ignored++; /* malformed, truncated or a fragment */
    return;
  }
  if (csum(ip, ihl) != 0) {
    st.bad_checksums++;
    return;
  }
  uint8_t *l4 = ip + ihl;
  unsigned l4len = total - ihl;
  if (ip[9] == 17 && l4len >= 12 && get16(l4 + 2) == 9 && memcmp(l4 + 8, "quit", 4) == 0) {
    quit = 1;
    return;
  }
  if (ip[9] != 1 || l4len < 8 || l4[0] != 8 || l4[1] != 0) {
    st.ignored++;
    return;
  }
  if (csum(l4, l4len) != 0) {
    st.bad_checksums++;
    return;
  }
  /* Echo reply in place: swap addresses, fresh TTL and checksums. */
  uint8_t tmp[4];
  memcpy(f, f + 6, 6);
  memcpy(f + 6, d->mac, 6);
  memcpy(tmp, ip + 12, 4);
  memcpy(ip + 12, ip + 16, 4);
  memcpy(ip + 16, tmp, 4);
  ip[8] = 64;
  put16(ip + 10, 0);
  put16(ip + 10, csum(ip, ihl));
  l4[0] = 0; /* type 8 -> 0: adjust the checksum instead of summing again */
  put16(l4 + 2, csum_update(get16(l4 + 2), 0x0800, 0x0000));
  send_frame(d, f, ETH_HLEN + total);
  st.replies++;
  d->replies++;
}

static void frame(struct dev *d, uint8_t *f, uint64_t len) {
  if (len < ETH_HLEN) {
    st.ignored++;
    return;
  }
  switch (get16(f + 12)) {
  case 0x0806: arp(d, f, len); break;
  case 0x0800: ipv4(d, f, len); break;
  default: st.ignored++;
  }
}

/* Reads and handles up to `limit` pending frames of d; returns how many. */
static uint64_t drain(struct dev *d, uint64_t limit) {
  uint64_t n = 0;
  while (n < limit) {
    uint64_t len = d->mtu + ETH_HLEN;
    int r = echo_read(d->handle, rx, &len);
    if (r == HVT_AGAIN) break;
    if (r != HVT_OK || len > d->mtu + ETH_HLEN) {
      hvt_printf("%s: NET_READ(%s) returned %d len=%lu\n", NET_ECHO_PROG, d->name, r, len);
      hvt_halt(3, 0);
    }
    n++;
    frame(d, rx, len);
  }
  return n;
}

/* ---- start-up checks (before any traffic) ---- */

static void check_empty(struct dev *d) {
  uint64_t len = 1234;
  int r = hvt_net_read(d->handle, rx, &len);
  if (r == HVT_AGAIN && len == 1234) {
    hvt_printf("read-empty(%s): AGAIN\n", d->name);
  } else {
    hvt_printf("read-empty(%s): ret=%d len=%lu\n", d->name, r, len);
    if (r == HVT_OK) frame(d, rx, len);
  }
}

static void check_wrong_handles(uint32_t entries) {
  const uint64_t bad[] = { 0, entries, entries + 1, 64, 1000, (1ull << 32) | devs[0].handle, ~0ull };
  memset(tx, 0xff, 12);
  put16(tx + 12, 0x88b5); /* local experimental ethertype, never sent if all is well */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t len = 1514;
    int rr = hvt_net_read(bad[i], rx, &len);
    int wr = hvt_net_write(bad[i], tx, 60);
    hvt_printf("wrong-handle 0x%lx: read=%d write=%d\n", bad[i], rr, wr);
  }
}

#ifdef NET_ECHO_RING
static void ring_checks(uint32_t entries) {
  for (size_t i = 0; i < NDEV; i++) {
    size_t got = 777;
    int r = hvt_s5_net_read(devs[i].handle, rx, devs[i].mtu + ETH_HLEN, &got);
    hvt_printf("ring-read-empty(%s): ret=%d len=%lu\n", devs[i].name, r, got);
    if (r == HVT_OK) frame(&devs[i], rx, got);
  }
  const uint64_t bad[] = { 0, entries, 64, 0xffffffffu };
  memset(tx, 0xff, 12);
  put16(tx + 12, 0x88b5);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t got = 777;
    int rr = hvt_s5_net_read(bad[i], rx, 1514, &got);
    int wr = hvt_s5_net_write(bad[i], tx, 60);
    hvt_printf("ring-wrong-handle 0x%lx: read=%d len=%lu write=%d\n", bad[i], rr, got, wr);
  }
}
#endif

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
#ifdef NET_ECHO_RING
  int ring = hvt_ring_init(bi);
#else
  int ring = 0;
#endif
  hvt_touch(rx, sizeof rx);
  hvt_touch(tx, sizeof tx);
  const struct hvt_mft *m = hvt_mft();
  uint64_t valid = 0;
  for (size_t i = 0; i < NDEV; i++) {
    struct dev *d = &devs[i];
    char word[32];
    d->name = dev_names[i];
    int h = hvt_mft_find(d->name, HVT_MFT_NET_BASIC);
    if (h < 0) hvt_abort("net device missing from the manifest copy");
    const struct hvt_mft_entry *e = &m->e[h];
    d->handle = (uint64_t)h;
    memcpy(d->mac, e->u.net.mac, 6);
    d->mtu = e->u.net.mtu ? e->u.net.mtu : 1500;
    if (hvt_next_word(&cmdline, word, sizeof word) == 0 || parse_ip(word, d->ip) != 0) {
      hvt_printf("usage: %s.hvt IP%s [N]\n", NET_ECHO_PROG, NDEV > 1 ? "..." : "");
      return 2;
    }
    valid |= 1ull << h;
    hvt_printf("%s: dev=%s handle=%d mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u ip=%u.%u.%u.%u "
               "mem_size=%lu host_features=%u net_ring=%lu attached=%u ring=%d\n",
               NET_ECHO_PROG, d->name, h, d->mac[0], d->mac[1], d->mac[2], d->mac[3], d->mac[4],
               d->mac[5], e->u.net.mtu, d->ip[0], d->ip[1], d->ip[2], d->ip[3], bi->mem_size,
               bi->host_features, bi->net_ring, e->attached, ring);
  }
  if (*cmdline) {
    int64_t n;
    if (hvt_parse_i64(cmdline, &n) != 0 || n < 0) {
      hvt_printf("bad reply count: %s\n", cmdline);
      return 2;
    }
    max_replies = (uint64_t)n;
  }

  for (size_t i = 0; i < NDEV; i++) check_empty(&devs[i]);
  uint64_t rs = ~0ull;
  int pr = hvt_poll(0, &rs);
  hvt_printf("poll-empty: ret=%d ready=0x%lx\n", pr, rs);
  check_wrong_handles(m->entries);
#ifdef NET_ECHO_RING
  ring_checks(m->entries);
#endif
  hvt_printf("%s: ready\n", NET_ECHO_PROG);

  while (!quit && (max_replies == 0 || st.replies < max_replies)) {
    rs = 0;
    int n = hvt_poll(1000000000ull, &rs);
    if (rs & ~valid) st.poll_bogus++;
    if (n != popcount(rs)) st.poll_mismatch++;
    /* Round robin in batches, so that a busy device cannot starve the
     * other; POLL again once a round finds every device drained. */
    for (int round = 0, busy = 1; busy && !quit; round++) {
      busy = 0;
      for (size_t i = 0; i < NDEV && !quit; i++) {
        struct dev *d = &devs[i];
        uint64_t got = drain(d, BATCH);
        if (got == BATCH) busy = 1;
        if (round > 0) continue;
        if (rs & (1ull << d->handle)) {
          if (got == 0) st.poll_spurious++;
        } else {
          st.unflagged += got;
        }
      }
    }
  }

  hvt_printf("%s: replies=%lu arp=%lu bad_checksums=%lu ignored=%lu poll_bogus=%lu "
             "poll_mismatch=%lu poll_spurious=%lu unflagged=%lu\n",
             NET_ECHO_PROG, st.replies, st.arp, st.bad_checksums, st.ignored, st.poll_bogus,
             st.poll_mismatch, st.poll_spurious, st.unflagged);
  for (size_t i = 0; i < NDEV; i++) hvt_printf("dev %s: replies=%lu\n", devs[i].name, devs[i].replies);
  return 0;
}
