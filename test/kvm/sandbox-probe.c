// Test helper of test/kvm/sandbox-filter.test.ts (compiled there with gcc):
// installs a seccomp program the test built with monitor/sandbox/filter.ts,
// then makes one system call and says what it returned. A call the filter
// refuses kills the process with SIGSYS before it prints anything.
//
//   sandbox-probe SCOPE CALL SCRATCH_DIR
//     prints "pid N\n", reads the program (8-byte instructions) from stdin to
//     EOF, sets no-new-privileges, installs it (with TSYNC if SCOPE is
//     "process"), makes CALL, prints "ret R errno E\n" and exits 0.
//
// Every call is made with arguments that do nothing harmful should a broken
// filter let it through (bad descriptors, invalid flags, paths in
// SCRATCH_DIR), so a failing test never changes the machine.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/sched.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static pid_t my_pid, my_tid;
static char scratch[4096];
static volatile sig_atomic_t got_signal;

static void on_usr2(int sig) { got_signal = sig; }
static void* thread_main(void* arg) { return arg; }

static long call(const char* name) {
  static char* const argv[] = {"true", NULL};
  static char* const envp[] = {NULL};
  char path[4200];
  snprintf(path, sizeof path, "%s/probe-file", scratch);
  struct sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNIX;
  char byte = 0;
  struct iovec iov = {&byte, 1};
  if (!strcmp(name, "execve")) return syscall(SYS_execve, "/bin/true", argv, envp);
  if (!strcmp(name, "execveat")) return syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, envp, 0);
  if (!strcmp(name, "open")) return syscall(SYS_open, path, O_RDONLY);
  if (!strcmp(name, "openat")) return syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
  if (!strcmp(name, "openat2")) {
    uint64_t how[3] = {O_RDONLY, 0, 0};
    return syscall(SYS_openat2, AT_FDCWD, path, how, sizeof how);
  }
  if (!strcmp(name, "creat")) return syscall(SYS_creat, path, 0600);
  if (!strcmp(name, "socket")) return syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
  if (!strcmp(name, "socket-inet")) return syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (!strcmp(name, "connect")) return syscall(SYS_connect, -1, &sa, sizeof sa);
  if (!strcmp(name, "bind")) return syscall(SYS_bind, -1, &sa, sizeof sa);
  if (!strcmp(name, "listen")) return syscall(SYS_listen, -1, 0);
  if (!strcmp(name, "accept")) return syscall(SYS_accept, -1, NULL, NULL);
  if (!strcmp(name, "accept4")) return syscall(SYS_accept4, -1, NULL, NULL, 0);
  if (!strcmp(name, "ptrace")) return syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0);
  if (!strcmp(name, "process_vm_readv")) return syscall(SYS_process_vm_readv, my_pid, &iov, 1, &iov, 1, 0);
  if (!strcmp(name, "process_vm_writev")) return syscall(SYS_process_vm_writev, my_pid, &iov, 1, &iov, 1, 0);
  if (!strcmp(name, "fork") || !strcmp(name, "vfork") || !strcmp(name, "clone-process")) {
    long r = !strcmp(name, "fork") ? syscall(SYS_fork) : !strcmp(name, "vfork") ? syscall(SYS_vfork) : syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    return r;
  }
  // Namespace flags with CLONE_THREAD but without CLONE_SIGHAND: the kernel
  // would refuse it (EINVAL); the filter must kill first.
  if (!strcmp(name, "clone-thread-newnet")) return syscall(SYS_clone, CLONE_THREAD | CLONE_NEWNET, 0, 0, 0, 0);
  if (!strcmp(name, "clone3")) {
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = 0xffffffffffffffffULL;  // invalid: never creates anything, whatever the filter does
    return syscall(SYS_clone3, &ca, sizeof ca);
  }
  if (!strcmp(name, "mount")) return syscall(SYS_mount, NULL, NULL, NULL, 0, NULL);
  if (!strcmp(name, "unshare")) return syscall(SYS_unshare, 0);
  if (!strcmp(name, "setns")) return syscall(SYS_setns, -1, 0);
  if (!strcmp(name, "bpf")) return syscall(SYS_bpf, -1, NULL, 0);
  if (!strcmp(name, "init_module")) return syscall(SYS_init_module, NULL, 0, "");
  if (!strcmp(name, "finit_module")) return syscall(SYS_finit_module, -1, "", 0);
  if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
  if (!strcmp(name, "kexec_file_load")) return syscall(SYS_kexec_file_load, -1, -1, 0, "", 0xdead0000UL);
  if (!strcmp(name, "seccomp")) return syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL);
  if (!strcmp(name, "x32-write")) return syscall(0x40000000 | SYS_write, 1, "x", 1);
  if (!strcmp(name, "ioctl-tiocsti")) return syscall(SYS_ioctl, 0, TIOCSTI, &byte);
  if (!strcmp(name, "tgkill-other")) return syscall(SYS_tgkill, 1, 1, 0);
  if (!strcmp(name, "kill-other")) return syscall(SYS_kill, 1, 0);
  // Allowed (by the process policy at least):
  if (!strcmp(name, "write")) return syscall(SYS_write, 1, "", 0);
  if (!strcmp(name, "ioctl-kvm-run")) return syscall(SYS_ioctl, -1, 0xae80 /* KVM_RUN */, 0);
  if (!strcmp(name, "ioctl-kvm-run-high-bits")) return syscall(SYS_ioctl, -1, 0xffffffff0000ae80UL, 0);
  if (!strcmp(name, "memory")) {
    void* p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    if (mprotect(p, 4096, PROT_READ) != 0 || madvise(p, 65536, MADV_DONTNEED) != 0) return -1;
    return munmap(p, 65536);
  }
  if (!strcmp(name, "futex")) {
    static int word;
    return syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  if (!strcmp(name, "clocks")) {
    struct timespec ts;
    if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) return -1;
    return syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts);
  }
  if (!strcmp(name, "tgkill-own")) {
    long r = syscall(SYS_tgkill, my_pid, my_tid, SIGUSR2);  // handled, then rt_sigreturn
    return r == 0 && got_signal == SIGUSR2 ? 0 : -1;
  }
  if (!strcmp(name, "poll-sleep")) return syscall(SYS_poll, NULL, 0, 1500);  // the test stops and continues it
  if (!strcmp(name, "thread")) {
    // glibc tries clone3 (ENOSYS from the filter), then clone with CLONE_THREAD.
    pthread_t t;
    int e = pthread_create(&t, NULL, thread_main, NULL);
    if (e != 0) {
      errno = e;
      return -1;
    }
    return pthread_join(t, NULL);
  }
  fprintf(stderr, "sandbox-probe: unknown call %s\n", name);
  exit(3);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sandbox-probe SCOPE CALL SCRATCH_DIR\n");
    return 3;
  }
  snprintf(scratch, sizeof scratch, "%s", argv[3]);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);  // a SIGSYS kill would dump core otherwise
  signal(SIGUSR2, on_usr2);
  // Like Node, which has threads before any filter: glibc's first
  // pthread_create installs its own signal handlers (rt_sigaction), later
  // ones do not.
  pthread_t warm;
  if (pthread_create(&warm, NULL, thread_main, NULL) != 0 || pthread_join(warm, NULL) != 0) return 3;
  my_pid = getpid();
  my_tid = (pid_t)syscall(SYS_gettid);
  printf("pid %d\n", my_pid);
  fflush(stdout);
  static unsigned char prog[8 * 4096];
  size_t len = 0;
  for (ssize_t n; (n = read(0, prog + len, sizeof prog - len)) > 0;) len += (size_t)n;
  struct sock_fprog fprog = {(unsigned short)(len / 8), (struct sock_filter*)prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, strcmp(argv[1], "process") ? 0 : SECCOMP_FILTER_FLAG_TSYNC, &fprog) != 0) {
    printf("install failed errno %d\n", errno);
    return 2;
  }
  errno = 0;
  long r = call(argv[2]);
  printf("ret %ld errno %d\n", r, r < 0 ? errno : 0);
  fflush(stdout);
  // A VM's thread ends with exit, never exit_group (not in the thread policy);
  // the last thread's exit ends the process with that status.
  syscall(SYS_exit, 0);
  return 0;
}
