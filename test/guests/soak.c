/*
 * soak: a long-running guest for scripts/soak.mjs (npm run soak). Usage:
 *
 *   soak.hvt IP [SEED]          needs net "service" and block "storage"
 *
 * Does three things at once, for as long as it runs:
 *   - answers ARP requests for IP and ICMP echo requests to IP (a ping
 *     flood), with the least guest work per frame: the reply is the request
 *     with the addresses swapped and the ICMP checksum adjusted (RFC 1624);
 *   - block I/O over the whole disk, one block per round, wrapping: read
 *     block b and check it still holds what the previous pass wrote (zeros
 *     on the first pass: the disk must start zeroed), write the pattern of
 *     (SEED, b, pass), read it back and compare;
 *   - prints a counter line every second (TSC clock):
 *       soak: t=S polls=N frames=N replies=N arp=N ignored=N net_errors=N
 *             blocks=N verified=N mismatches=N block_errors=N gen=G next=B
 *     blocks: rounds done; verified: rounds whose two checks passed; gen:
 *     the current pass; next: the next block. A failed check also prints a
 *     "soak: MISMATCH ..." line (the first few only).
 * A UDP datagram to IP port 9 starting with "quit" ends it between rounds:
 * it prints the counter line once more as "soak: done ..." and exits 0, or
 * 1 if any check or hypercall failed. The disk then holds the pattern of
 * pass gen for blocks below next and of pass gen-1 above (zeros if gen is
 * 0), which the script verifies from the host; pattern() here and in
 * scripts/soak.mjs must agree.
 * Guest code is emulated instruction by instruction on PVM hosts, so the
 * pattern is 64-bit xorshift words and comparisons go 8 bytes at a time.
 */
#include "hvt.h"

HVT_MANIFEST(HVT_NET("service"), HVT_BLOCK("storage"));

#define ETH_HLEN 14
#define MAX_BLOCK 4096u
#define MAX_MISMATCH_LINES 8

static uint8_t frame[9216 + ETH_HLEN] __attribute__((aligned(64)));
static uint64_t wbuf[MAX_BLOCK / 8] __attribute__((aligned(4096)));
static uint64_t rbuf[MAX_BLOCK / 8] __attribute__((aligned(4096)));

static uint8_t my_ip[4], my_mac[6];
static uint64_t net_h, blk_h, bs, nblocks, seed;
static int quit;

static struct {
  uint64_t polls, frames, replies, arp, ignored, net_errors;
  uint64_t blocks, verified, mismatches, block_errors, gen, next;
} st;

/* ---- block pattern ---- */

/* First state of block b in pass gen: a 64-bit mix of seed, b and gen (never 0). */
static uint64_t pattern_state(uint64_t b, uint64_t gen) {
  uint64_t x = seed ^ ((b + 1) * 0x9E3779B97F4A7C15ull) ^ ((gen + 1) * 0xC2B2AE3D27D4EB4Full);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x ? x : 1;
}

static uint64_t xorshift(uint64_t s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

static void pattern(uint64_t *w, uint64_t b, uint64_t gen) {
  uint64_t s = pattern_state(b, gen);
  for (uint64_t i = 0; i < bs / 8; i++) w[i] = s = xorshift(s);
}

/* Index of the first word of rbuf that is not what pass gen-1 left (zeros before pass 0), or -1. */
static int64_t old_diff(uint64_t b, uint64_t gen) {
  if (gen == 0) {
    for (uint64_t i = 0; i < bs / 8; i++)
      if (rbuf[i] != 0) return (int64_t)i;
    return -1;
  }
  uint64_t s = pattern_state(b, gen - 1);
  for (uint64_t i = 0; i < bs / 8; i++) {
    s = xorshift(s);
    if (rbuf[i] != s) return (int64_t)i;
  }
  return -1;
}

static int64_t readback_diff(void) {
  for (uint64_t i = 0; i < bs / 8; i++)
    if (rbuf[i] != wbuf[i]) return (int64_t)i;
  return -1;
}

static void mismatch(const char *what, uint64_t b, int64_t word) {
  if (st.mismatches++ < MAX_MISMATCH_LINES)
    hvt_printf("soak: MISMATCH %s block=%lu gen=%lu word=%ld\n", what, b, st.gen, word);
}

/* One round on block st.next: check the old contents, write the new, read it back. */
static void block_round(void) {
  const uint64_t b = st.next, off = b * bs;
  int ok = 1;
  rbuf[0] = ~0ull; /* a read that transfers nothing must not pass */
  int r = hvt_block_read(blk_h, off, rbuf, bs);
  if (r != HVT_OK) {
    st.block_errors++;
    ok = 0;
  } else {
    int64_t d = old_diff(b, st.gen);
    if (d >= 0) {
      mismatch("old", b, d);
      ok = 0;
    }
  }
  pattern(wbuf, b, st.gen);
  if (hvt_block_write(blk_h, off, wbuf, bs) != HVT_OK) {
    st.block_errors++;
    ok = 0;
  }
  rbuf[0] = ~wbuf[0];
  if (hvt_block_read(blk_h, off, rbuf, bs) != HVT_OK) {
    st.block_errors++;
    ok = 0;
  } else {
    int64_t d = readback_diff();
    if (d >= 0) {
      mismatch("readback", b, d);
      ok = 0;
    }
  }
  st.blocks++;
  st.verified += (uint64_t)ok;
  if (++st.next == nblocks) {
    st.next = 0;
    st.gen++;
  }
}

/* ---- network ---- */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void send(uint64_t len) {
  if (hvt_net_write(net_h, frame, len) != HVT_OK) st.net_errors++;
}

static void arp(uint64_t len) {
  uint8_t *a = frame + ETH_HLEN;
  /* Ethernet/IPv4 request for our address. */
  if (len < ETH_HLEN + 28 || be16(a) != 1 || be16(a + 2) != 0x0800 || be16(a + 6) != 1 ||
      memcmp(a + 24, my_ip, 4) != 0) {
    st.ignored++;
    return;
  }
  memcpy(frame, a + 8, 6); /* back to the asker */
  memcpy(frame + 6, my_mac, 6);
  a[7] = 2;                   /* reply */
  memcpy(a + 18, a + 8, 10);  /* target = the asker's sha, spa */
  memcpy(a + 8, my_mac, 6);
  memcpy(a + 14, my_ip, 4);
  send(ETH_HLEN + 28);
  st.arp++;
}

static void ipv4(uint64_t len) {
  uint8_t *ip = frame + ETH_HLEN;
  if (len < ETH_HLEN + 20 || (ip[0] >> 4) != 4 || memcmp(ip + 16, my_ip, 4) != 0) {
    st.ignored++;
    return;
  }
  uint64_t ihl = (ip[0] & 15u) * 4u;
  uint8_t *l4 = ip + ihl;
  if (ihl < 20 || len < ETH_HLEN + ihl + 8) {
    st.ignored++;
    return;
  }
  if (ip[9] == 17 && be16(l4 + 2) == 9 && len >= ETH_HLEN + ihl + 12 && memcmp(l4 + 8, "quit", 4) == 0) {
    quit = 1;
    return;
  }
  if (ip[9] != 1 || l4[0] != 8) {
    st.ignored++;
    return;
  }
  /* Echo reply: swap MACs and IPs (the IP checksum stays valid), type 8 -> 0. */
  uint8_t t[6];
  memcpy(t, frame, 6);
  memcpy(frame, frame + 6, 6);
  memcpy(frame + 6, t, 6);
  memcpy(t, ip + 12, 4);
  memcpy(ip + 12, ip + 16, 4);
  memcpy(ip + 16, t, 4);
  l4[0] = 0;
  /* RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for the word m = 0x0800 -> m' = 0. */
  uint32_t sum = (uint16_t)~be16(l4 + 2) + (uint32_t)(uint16_t)~0x0800u;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  uint16_t hc = (uint16_t)~sum;
  l4[2] = (uint8_t)(hc >> 8);
  l4[3] = (uint8_t)hc;
  send(len);
  st.replies++;
}

/* Handles what the tap has for us, at most `limit` frames. */
static void drain(int limit) {
  for (int i = 0; i < limit && !quit; i++) {
    uint64_t len = sizeof frame;
    int r = hvt_net_read(net_h, frame, &len);
    if (r == HVT_AGAIN) return;
    if (r != HVT_OK) {
      st.net_errors++;
      return;
    }
    st.frames++;
    uint16_t type = len >= ETH_HLEN ? be16(frame + 12) : 0;
    if (type == 0x0806) arp(len);
    else if (type == 0x0800) ipv4(len);
    else st.ignored++;
  }
}

/* ---- main loop ---- */

static int parse_ip(const char *s, uint8_t ip[4]) {
  for (int i = 0; i < 4; i++) {
    unsigned v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) { v = v * 10 + (unsigned)(*s++ - '0'); digits++; }
    if (!digits || v > 255) return -1;
    ip[i] = (uint8_t)v;
    if (i < 3 && *s++ != '.') return -1;
  }
  return *s ? -1 : 0;
}

/* Seconds since start: the TSC if the tender gave its frequency, else WALLTIME. */
static uint64_t now_ns(void) {
  return hvt_bi->cpu_cycle_freq ? hvt_monotonic_ns() : hvt_walltime();
}

static void report(const char *tag, uint64_t t) {
  hvt_printf("soak: %st=%lu polls=%lu frames=%lu replies=%lu arp=%lu ignored=%lu net_errors=%lu "
             "blocks=%lu verified=%lu mismatches=%lu block_errors=%lu gen=%lu next=%lu\n",
             tag, t, st.polls, st.frames, st.replies, st.arp, st.ignored, st.net_errors, st.blocks,
             st.verified, st.mismatches, st.block_errors, st.gen, st.next);
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char word[32];
  int64_t s = 1;
  if (hvt_next_word(&cmdline, word, sizeof word) == 0 || parse_ip(word, my_ip) != 0 ||
      (*cmdline && (hvt_parse_i64(cmdline, &s) != 0 || s < 0))) {
    hvt_puts("usage: soak.hvt IP [SEED]\n");
    return 2;
  }
  seed = (uint64_t)s;
  int nh = hvt_mft_find("service", HVT_MFT_NET_BASIC);
  int bh = hvt_mft_find("storage", HVT_MFT_BLOCK_BASIC);
  if (nh < 0 || bh < 0) hvt_abort("soak: devices missing from the manifest copy");
  net_h = (uint64_t)nh;
  blk_h = (uint64_t)bh;
  memcpy(my_mac, hvt_mft()->e[nh].u.net.mac, 6);
  const uint64_t cap = hvt_mft()->e[bh].u.block.capacity;
  bs = hvt_mft()->e[bh].u.block.block_size;
  if (bs < 8 || bs > MAX_BLOCK || cap < bs) {
    hvt_printf("soak: unusable block device: capacity=%lu block_size=%lu\n", cap, bs);
    return 2;
  }
  nblocks = cap / bs;
  hvt_touch(frame, sizeof frame);
  hvt_touch(wbuf, sizeof wbuf);
  hvt_touch(rbuf, sizeof rbuf);
  hvt_printf("soak: ready ip=%u.%u.%u.%u mac=%02x:%02x:%02x:%02x:%02x:%02x blocks=%lu block_size=%lu seed=%lu\n",
             my_ip[0], my_ip[1], my_ip[2], my_ip[3], my_mac[0], my_mac[1], my_mac[2], my_mac[3],
             my_mac[4], my_mac[5], nblocks, bs, seed);

  const uint64_t t0 = now_ns();
  uint64_t next_report = t0 + 1000000000ull;
  while (!quit) {
    /* POLL without waiting: there is always block work to do. */
    uint64_t ready = 0;
    hvt_poll(0, &ready);
    st.polls++;
    if (ready & (1ull << net_h)) drain(32);
    if (quit) break;
    block_round();
    uint64_t t = now_ns();
    if (t >= next_report) {
      report("", (t - t0) / 1000000000ull);
      /* Behind by more than a second (a stall): do not print a burst to catch up. */
      next_report = t - next_report > 1000000000ull ? t + 1000000000ull : next_report + 1000000000ull;
    }
  }
  report("done ", (now_ns() - t0) / 1000000000ull);
  return st.mismatches || st.block_errors || st.net_errors ? 1 : 0;
}
