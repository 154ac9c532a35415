/* block_rootfs: block_rw.c with its block device named "rootfs", the name
 * urunc gives a rumprun unikernel's disk (--block:rootfs=PATH). */
#define BLOCK_RW_NAME "rootfs"
#include "block_rw.c"
