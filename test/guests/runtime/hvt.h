/*
 * Freestanding runtime for the ukvm-ts test unikernels (guest side of the
 * Solo5 hvt ABI, docs/abi.md). No libc: everything a guest needs is here
 * or in lib.c. A guest defines
 *
 *     HVT_MANIFEST();                                  // no devices, or
 *     HVT_MANIFEST(HVT_BLOCK("disk"), HVT_NET("service"));
 *     int guest_main(const struct hvt_boot_info *bi, const char *cmdline);
 *
 * and the runtime halts with guest_main's return value as exit status.
 */
#ifndef HVT_GUEST_H
#define HVT_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- ABI constants (docs/abi.md §5, §9.1) ---- */
#define HVT_ABI_TARGET 1
#define HVT_ABI_VERSION 2
#define HVT_NOTE_TYPE_ABI 0x31494241u      /* "ABI1" */
#define HVT_NOTE_TYPE_MANIFEST 0x3154464Du /* "MFT1" */
#define HVT_BOOT_INFO_GPA 0x10000u
#define HVT_PORT_BASE 0x500u
#define HVT_PORT_RING_KICK 0x600u
#define HVT_COOKIE_SIZE 512u
#define HVT_CMDLINE_SIZE 8192u

enum hvt_hypercall {
  HVT_HC_WALLTIME = 1,
  HVT_HC_PUTS = 2,
  HVT_HC_POLL = 3,
  HVT_HC_BLOCK_WRITE = 4,
  HVT_HC_BLOCK_READ = 5,
  HVT_HC_NET_WRITE = 6,
  HVT_HC_NET_READ = 7,
  HVT_HC_HALT = 8,
};

enum hvt_result { HVT_OK = 0, HVT_AGAIN = 1, HVT_EINVAL = 2, HVT_EUNSPEC = 3 };

/* ---- Boot info (docs/abi.md §8.2), at GPA 0x10000, read-only for the guest ---- */
struct hvt_boot_info {
  uint64_t mem_size;
  uint64_t kernel_end;
  uint64_t cpu_cycle_freq;
  uint64_t cmdline;
  uint64_t mft;
  uint32_t host_features;
  uint32_t guest_features;
  uint64_t net_ring;
};
_Static_assert(sizeof(struct hvt_boot_info) == 56, "boot info is 56 bytes");

/* ---- Hypercall argument structures (docs/abi.md §10) ---- */
struct hvt_hc_walltime { uint64_t nsecs; };
struct hvt_hc_puts { uint64_t data; uint64_t len; };
struct hvt_hc_poll { uint64_t timeout_nsecs; uint64_t ready_set; int32_t ret; uint32_t pad; };
struct hvt_hc_block_io {
  uint64_t handle; uint64_t offset; uint64_t data; uint64_t len; int32_t ret; uint32_t pad;
};
struct hvt_hc_net_io { uint64_t handle; uint64_t data; uint64_t len; int32_t ret; uint32_t pad; };
struct hvt_hc_halt { uint64_t cookie; int32_t exit_status; uint32_t pad; };
_Static_assert(sizeof(struct hvt_hc_poll) == 24, "poll");
_Static_assert(sizeof(struct hvt_hc_block_io) == 40, "block io");
_Static_assert(sizeof(struct hvt_hc_net_io) == 32, "net io");
_Static_assert(sizeof(struct hvt_hc_halt) == 16, "halt");

/* ---- Manifest (docs/abi.md §4.1) ---- */
#define HVT_MFT_VERSION 1
#define HVT_MFT_MAX_ENTRIES 64
#define HVT_MFT_NAME_SIZE 68
#define HVT_MFT_BLOCK_BASIC 1u
#define HVT_MFT_NET_BASIC 2u
#define HVT_MFT_RESERVED_FIRST 0x40000000u

struct hvt_mft_entry {
  char name[HVT_MFT_NAME_SIZE];
  uint32_t type;
  union {
    struct { uint64_t capacity; uint16_t block_size; } block;
    struct { uint8_t mac[6]; uint16_t mtu; } net;
    uint8_t raw[16];
  } u;
  uint8_t host_backing[8];
  uint8_t attached;
  uint8_t pad[7];
};
_Static_assert(sizeof(struct hvt_mft_entry) == 104, "manifest entry is 104 bytes");

struct hvt_mft {
  uint32_t version;
  uint32_t entries;
  struct hvt_mft_entry e[];
};

/* Generic ELF note header with the 8-byte padded "Solo5" name. */
struct hvt_note_hdr {
  uint32_t namesz;
  uint32_t descsz;
  uint32_t type;
  char name[8];
};

/*
 * Section attribute for a note: the trailing '#' comments out the flags gcc
 * would append, so the section gets the SHT_NOTE type (readelf -n shows it).
 */
#define HVT_NOTE_SECTION(name) \
  __attribute__((section(name ",\"a\",@note #"), used))

/* Device entries for HVT_MANIFEST. Names: 1..67 of [A-Za-z0-9]. */
#define HVT_BLOCK(nm) { .name = nm, .type = HVT_MFT_BLOCK_BASIC }
#define HVT_NET(nm) { .name = nm, .type = HVT_MFT_NET_BASIC }
#define HVT_DEVICE(nm, ty) { .name = nm, .type = (ty) }

/* Number of entries, including the reserved entry 0, of a device list. */
#define HVT_MFT_COUNT(...) \
  (sizeof((struct hvt_mft_entry[]){ { .type = 0 }, __VA_ARGS__ }) / sizeof(struct hvt_mft_entry))

/*
 * The manifest note (docs/abi.md §3.5, §19.1): 20-byte note header, 4 zero bytes,
 * then manifest v1 with entry 0 = "" / RESERVED_FIRST and one entry per
 * device. The note is 4-aligned like Solo5's (descsz counts the 4 padding
 * bytes, so readelf parses it as a 4-byte-aligned note). Used exactly once per guest, at file scope. HVT_MANIFEST() with no
 * arguments declares no devices. Up to 63 devices.
 */
#define HVT_MANIFEST(...)                                                        \
  _Static_assert(HVT_MFT_COUNT(__VA_ARGS__) <= HVT_MFT_MAX_ENTRIES,              \
                 "at most 63 manifest devices");                                 \
  HVT_NOTE_SECTION(".note.solo5.manifest")                                       \
  const struct __attribute__((packed, aligned(4))) {                             \
    struct hvt_note_hdr h;                                                       \
    uint32_t align_pad;                                                          \
    uint32_t version;                                                            \
    uint32_t entries;                                                            \
    struct hvt_mft_entry e[HVT_MFT_COUNT(__VA_ARGS__)];                          \
  } hvt_manifest_note __attribute__((aligned(4))) = {                            \
    .h = { 6, (uint32_t)(4 + 8 + 104 * HVT_MFT_COUNT(__VA_ARGS__)),              \
           HVT_NOTE_TYPE_MANIFEST, "Solo5" },                                    \
    .align_pad = 0,                                                              \
    .version = HVT_MFT_VERSION,                                                  \
    .entries = (uint32_t)HVT_MFT_COUNT(__VA_ARGS__),                             \
    .e = { { .name = "", .type = HVT_MFT_RESERVED_FIRST }, __VA_ARGS__ },        \
  }

/* ---- Port I/O ---- */
static inline void hvt_outl(uint16_t port, uint32_t value) {
  __asm__ __volatile__("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}
static inline void hvt_outw(uint16_t port, uint16_t value) {
  __asm__ __volatile__("outw %0, %1" : : "a"(value), "Nd"(port) : "memory");
}
static inline void hvt_outb(uint16_t port, uint8_t value) {
  __asm__ __volatile__("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}
static inline uint32_t hvt_inl(uint16_t port) {
  uint32_t v;
  __asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}

/*
 * Issue hypercall `nr` with the argument structure at `arg` (docs/abi.md §9.1): a
 * 32-bit OUT of the structure's GPA to port 0x500+nr. The structure must be
 * in writable guest memory below 4 GiB; the "memory" clobber is the compiler
 * barrier that makes the tender's writes visible to the code after it.
 */
static inline void hvt_hypercall(unsigned nr, volatile void *arg) {
  hvt_outl((uint16_t)(HVT_PORT_BASE + nr), (uint32_t)(uintptr_t)arg);
}

static inline uint64_t hvt_rdtsc(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static inline void hvt_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static inline uint64_t hvt_rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

static inline void hvt_wrmsr(uint32_t msr, uint64_t v) {
  __asm__ __volatile__("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* ---- Runtime state and services (lib.c, start.S) ---- */
extern const struct hvt_boot_info *hvt_bi;
/* Registers at entry, saved by _start: rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rflags. */
enum { HVT_ENTRY_RFLAGS = 16, HVT_ENTRY_NREGS = 17 };
extern uint64_t hvt_entry_regs[HVT_ENTRY_NREGS];
/* Initialised to 0x5eed5eed5eed5eed (lives in the data PT_LOAD). */
extern volatile uint64_t hvt_data_marker;

int guest_main(const struct hvt_boot_info *bi, const char *cmdline);

__attribute__((noreturn)) void hvt_halt(int status, uint64_t cookie);
__attribute__((noreturn)) void hvt_abort(const char *msg);
void hvt_write(const char *data, size_t len);
void hvt_puts(const char *s); /* no newline added */
__attribute__((format(printf, 1, 2))) void hvt_printf(const char *fmt, ...);
void hvt_vprintf(const char *fmt, va_list ap);
uint64_t hvt_walltime(void);
/* POLL; returns ret, stores ready_set if non-NULL. */
int hvt_poll(uint64_t timeout_ns, uint64_t *ready_set);
int hvt_block_write(uint64_t handle, uint64_t offset, const void *data, uint64_t len);
int hvt_block_read(uint64_t handle, uint64_t offset, void *data, uint64_t len);
int hvt_net_write(uint64_t handle, const void *data, uint64_t len);
/* NET_READ; on HVT_OK *len is the frame size. */
int hvt_net_read(uint64_t handle, void *data, uint64_t *len);
/* Monotonic nanoseconds from RDTSC and bi->cpu_cycle_freq (0 if freq is 0). */
uint64_t hvt_monotonic_ns(void);

/* Manifest copy given by the tender (bi->mft). */
static inline const struct hvt_mft *hvt_mft(void) {
  return (const struct hvt_mft *)(uintptr_t)hvt_bi->mft;
}
/* Handle (manifest index) of the device NAME of TYPE, or -1. */
int hvt_mft_find(const char *name, uint32_t type);

/* Zero a range with integer stores (also used to pre-touch pages). */
void hvt_touch(void *p, size_t len);

/* ---- CPU tables and user mode (x86.c) ---- */
/* Frame of a CPU exception or `int $0x80`, as pushed by the CPU plus the
 * vector and a zero error code where the CPU pushes none. */
struct hvt_trap_regs { uint64_t vector, ec, rip, cs, rflags, rsp, ss; };
typedef void (*hvt_trap_handler_t)(const struct hvt_trap_regs *);
/* Load our GDT (+ TSS) and an IDT for vectors 0-31 and 0x80 (callable from
 * CPL 3). The handler runs at CPL 0 on a private stack and must not return
 * (it should HALT). */
void hvt_trap_install(hvt_trap_handler_t handler);
/* Switch to our own U/S page tables and run fn at CPL 3 on stack_top.
 * Needs hvt_trap_install first. fn comes back to CPL 0 through an exception
 * (e.g. ud2; on PVM `int $0x80` may arrive as #UD too); it cannot issue
 * hypercalls itself (port I/O faults at CPL 3). */
__attribute__((noreturn)) void hvt_enter_user(void (*fn)(void), uint64_t stack_top);

/* ---- String helpers ---- */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
int hvt_starts_with(const char *s, const char *prefix);
/* Copy the next space-separated word of *p into buf (NUL-terminated, cut
 * to size-1), advance *p past it and following spaces; returns its length. */
size_t hvt_next_word(const char **p, char *buf, size_t size);
/* Parse an optionally signed decimal (or 0x hex) integer; returns 0 on
 * success, -1 if s is not entirely a number. */
int hvt_parse_i64(const char *s, int64_t *out);

#endif
