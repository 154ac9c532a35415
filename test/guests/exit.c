/* exit: halts with the status given as the first word of the command line
 * (decimal, may be negative or above 255: the tender keeps the low 8 bits). */
#include "hvt.h"

HVT_MANIFEST();

int guest_main(const struct hvt_boot_info *bi, const char *cmdline) {
  (void)bi;
  char word[32];
  int64_t status;
  hvt_next_word(&cmdline, word, sizeof word);
  if (hvt_parse_i64(word, &status) != 0) {
    hvt_printf("exit: bad status '%s'\n", word);
    return 1;
  }
  hvt_printf("exit: status %ld\n", status);
  hvt_halt((int)status, 0);
}
