/* Runtime services for the test unikernels: hypercall wrappers, console
 * output, clocks, manifest lookup and the few libc functions gcc may call. */
#include "hvt.h"

const struct hvt_boot_info *hvt_bi;
uint64_t hvt_entry_regs[HVT_ENTRY_NREGS];
/* Initialised data, so that every guest has a file-backed data PT_LOAD. */
__attribute__((section(".data.hvt_keep"))) volatile uint64_t hvt_data_marker = 0x5eed5eed5eed5eedull;

/* Called by _start (start.S) with RDI = boot info. Never returns. */
__attribute__((noreturn)) void hvt_runtime_start(const struct hvt_boot_info *bi) {
  hvt_bi = bi;
  int status = guest_main(bi, (const char *)(uintptr_t)bi->cmdline);
  hvt_halt(status, 0);
}

/* ---- Hypercalls ---- */

void hvt_halt(int status, uint64_t cookie) {
  volatile struct hvt_hc_halt h = { .cookie = cookie, .exit_status = status };
  for (;;) hvt_hypercall(HVT_HC_HALT, &h);
}

void hvt_abort(const char *msg) {
  hvt_puts("ABORT: ");
  hvt_puts(msg);
  hvt_puts("\n");
  hvt_halt(255, 0);
}

void hvt_write(const char *data, size_t len) {
  volatile struct hvt_hc_puts p = { .data = (uint64_t)(uintptr_t)data, .len = len };
  hvt_hypercall(HVT_HC_PUTS, &p);
}

void hvt_puts(const char *s) { hvt_write(s, strlen(s)); }

uint64_t hvt_walltime(void) {
  volatile struct hvt_hc_walltime w = { 0 };
  hvt_hypercall(HVT_HC_WALLTIME, &w);
  return w.nsecs;
}

int hvt_poll(uint64_t timeout_ns, uint64_t *ready_set) {
  volatile struct hvt_hc_poll p = { .timeout_nsecs = timeout_ns };
  hvt_hypercall(HVT_HC_POLL, &p);
  if (ready_set) *ready_set = p.ready_set;
  return p.ret;
}

static int block_io(unsigned nr, uint64_t handle, uint64_t offset, uint64_t data, uint64_t len) {
  volatile struct hvt_hc_block_io b = {
    .handle = handle, .offset = offset, .data = data, .len = len, .ret = -1
  };
  hvt_hypercall(nr, &b);
  return b.ret;
}

int hvt_block_write(uint64_t handle, uint64_t offset, const void *data, uint64_t len) {
  return block_io(HVT_HC_BLOCK_WRITE, handle, offset, (uint64_t)(uintptr_t)data, len);
}

int hvt_block_read(uint64_t handle, uint64_t offset, void *data, uint64_t len) {
  return block_io(HVT_HC_BLOCK_READ, handle, offset, (uint64_t)(uintptr_t)data, len);
}

int hvt_net_write(uint64_t handle, const void *data, uint64_t len) {
  volatile struct hvt_hc_net_io n = {
    .handle = handle, .data = (uint64_t)(uintptr_t)data, .len = len, .ret = -1
  };
  hvt_hypercall(HVT_HC_NET_WRITE, &n);
  return n.ret;
}

int hvt_net_read(uint64_t handle, void *data, uint64_t *len) {
  volatile struct hvt_hc_net_io n = {
    .handle = handle, .data = (uint64_t)(uintptr_t)data, .len = *len, .ret = -1
  };
  hvt_hypercall(HVT_HC_NET_READ, &n);
  *len = n.len;
  return n.ret;
}

uint64_t hvt_monotonic_ns(void) {
  uint64_t freq = hvt_bi->cpu_cycle_freq;
  if (freq == 0) return 0;
  uint64_t tsc = hvt_rdtsc();
  /* (tsc % freq) * 1e9 stays below 2^64 for any freq under 18 GHz. */
  return (tsc / freq) * 1000000000ull + ((tsc % freq) * 1000000000ull) / freq;
}

int hvt_mft_find(const char *name, uint32_t type) {
  const struct hvt_mft *m = hvt_mft();
  for (uint32_t i = 0; i < m->entries; i++) {
    if (m->e[i].type == type && strcmp(m->e[i].name, name) == 0) return (int)i;
  }
  return -1;
}

/* ---- Formatted output ---- */

struct outbuf {
  char buf[256];
  size_t n;
};

static void ob_flush(struct outbuf *o) {
  if (o->n) hvt_write(o->buf, o->n);
  o->n = 0;
}

static void ob_putc(struct outbuf *o, char c) {
  if (o->n == sizeof o->buf) ob_flush(o);
  o->buf[o->n++] = c;
}

static void ob_num(struct outbuf *o, uint64_t v, unsigned base, int neg, unsigned width, char padc) {
  char tmp[24];
  unsigned n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  if (neg) tmp[n++] = '-';
  while (width > n) { ob_putc(o, padc); width--; }
  while (n) ob_putc(o, tmp[--n]);
}

/* %s %c %d %i %u %x %p %%, with optional '0' flag, width and l/ll/z. */
void hvt_vprintf(const char *fmt, va_list ap) {
  struct outbuf o;
  o.n = 0;
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') { ob_putc(&o, *p); continue; }
    p++;
    char padc = ' ';
    unsigned width = 0;
    int longs = 0;
    if (*p == '0') { padc = '0'; p++; }
    while (*p >= '0' && *p <= '9') width = width * 10 + (unsigned)(*p++ - '0');
    while (*p == 'l' || *p == 'z') { longs++; p++; }
    switch (*p) {
    case 'd': case 'i': {
      int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
      uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
      ob_num(&o, mag, 10, v < 0, width, padc);
      break;
    }
    case 'u': case 'x': {
      uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
      ob_num(&o, v, *p == 'u' ? 10 : 16, 0, width, padc);
      break;
    }
    case 'p':
      ob_putc(&o, '0'); ob_putc(&o, 'x');
      ob_num(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, 0, 0, ' ');
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (!s) s = "(null)";
      while (*s) ob_putc(&o, *s++);
      break;
    }
    case 'c':
      ob_putc(&o, (char)va_arg(ap, int));
      break;
    case '%':
      ob_putc(&o, '%');
      break;
    case '\0':
      p--;
      break;
    default:
      ob_putc(&o, '%');
      ob_putc(&o, *p);
    }
  }
  ob_flush(&o);
}

void hvt_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hvt_vprintf(fmt, ap);
  va_end(ap);
}

/* ---- Memory and strings (rep string instructions: no SSE, no recursion
 * through gcc's idiom recognition). ---- */

void *memset(void *d, int c, size_t n) {
  void *r = d;
  __asm__ __volatile__("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return r;
}

void *memcpy(void *d, const void *s, size_t n) {
  void *r = d;
  __asm__ __volatile__("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return r;
}

void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  if (dp <= sp || dp >= sp + n) return memcpy(d, s, n);
  /* Overlapping with d above s: copy backwards. */
  dp += n - 1;
  sp += n - 1;
  __asm__ __volatile__("std\n\trep movsb\n\tcld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
  return d;
}

void hvt_touch(void *p, size_t len) { memset(p, 0, len); }

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) { a++; b++; }
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i] || !a[i]) return (unsigned char)a[i] - (unsigned char)b[i];
  }
  return 0;
}

int hvt_starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

size_t hvt_next_word(const char **p, char *buf, size_t size) {
  const char *s = *p;
  size_t n = 0;
  while (*s == ' ') s++;
  while (*s && *s != ' ') {
    if (n + 1 < size) buf[n++] = *s;
    s++;
  }
  while (*s == ' ') s++;
  if (size) buf[n] = '\0';
  *p = s;
  return n;
}

int hvt_parse_i64(const char *s, int64_t *out) {
  int neg = 0;
  uint64_t v = 0;
  unsigned base = 10;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; s += 2; }
  if (!*s) return -1;
  for (; *s; s++) {
    unsigned d;
    if (*s >= '0' && *s <= '9') d = (unsigned)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f') d = (unsigned)(*s - 'a' + 10);
    else if (base == 16 && *s >= 'A' && *s <= 'F') d = (unsigned)(*s - 'A' + 10);
    else return -1;
    v = v * base + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}
