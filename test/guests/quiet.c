/* quiet: handles leading --solo5:<level> options like the Solo5 bindings
 * (docs/abi.md §19.5) and prints "Solo5: " banner lines only at INFO level or more
 * verbose, then the application's own command line. */
#include "hvt.h"

HVT_MANIFEST();

enum level { L_ERROR, L_WARN, L_INFO, L_DEBUG };

static const struct { const char *opt; enum level level; } options[] = {
  { "--solo5:quiet", L_ERROR }, { "--solo5:error", L_ERROR }, { "--solo5:warn", L_WARN },
  { "--solo5:info", L_INFO },   { "--solo5:debug", L_DEBUG },
};

static enum level level = L_INFO;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Consumes the leading --solo5: options; returns the rest. */
static const char *parse(const char *s) {
  while (is_space(*s)) s++;
  for (;;) {
    int matched = 0;
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
      size_t n = strlen(options[i].opt);
      if (strncmp(s, options[i].opt, n) == 0 && (s[n] == '\0' || is_space(s[n]))) {
        level = options[i].level;
        s += n;
        while (is_space(*s)) s++;
        matched = 1;
        break;
      }
    }
    if (!matched) return s;
  }
}

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  const char *app = parse(cmdline);
  if (level >= L_INFO) {
    hvt_puts("Solo5: Bindings version ukvm-ts-test\n");
    hvt_printf("Solo5: Memory map: %lu MB addressable:\n", bi->mem_size >> 20);
  }
  if (level >= L_DEBUG) hvt_printf("Solo5: debug: cmdline at 0x%lx\n", bi->cmdline);
  hvt_printf("args: %s\n", app);
  if (level >= L_INFO) hvt_puts("Solo5: solo5_exit(0) called\n");
  return 0;
}
