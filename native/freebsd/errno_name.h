// The symbolic name of an errno value ("ENOENT"), for the `code` property of
// the addon's errors, where the C library offers no strerrorname_np (FreeBSD).
// Built from the <errno.h> macros themselves, so the values are the host's.
#pragma once
#include <cerrno>

namespace ukvm {

inline const char* ErrnoName(int err) {
  switch (err) {
#define UKVM_ERRNO(name) \
  case name:             \
    return #name;
    UKVM_ERRNO(EPERM) UKVM_ERRNO(ENOENT) UKVM_ERRNO(ESRCH) UKVM_ERRNO(EINTR) UKVM_ERRNO(EIO)
    UKVM_ERRNO(ENXIO) UKVM_ERRNO(E2BIG) UKVM_ERRNO(ENOEXEC) UKVM_ERRNO(EBADF) UKVM_ERRNO(ECHILD)
    UKVM_ERRNO(EDEADLK) UKVM_ERRNO(ENOMEM) UKVM_ERRNO(EACCES) UKVM_ERRNO(EFAULT) UKVM_ERRNO(EBUSY)
    UKVM_ERRNO(EEXIST) UKVM_ERRNO(EXDEV) UKVM_ERRNO(ENODEV) UKVM_ERRNO(ENOTDIR) UKVM_ERRNO(EISDIR)
    UKVM_ERRNO(EINVAL) UKVM_ERRNO(ENFILE) UKVM_ERRNO(EMFILE) UKVM_ERRNO(ENOTTY) UKVM_ERRNO(EFBIG)
    UKVM_ERRNO(ENOSPC) UKVM_ERRNO(ESPIPE) UKVM_ERRNO(EROFS) UKVM_ERRNO(EPIPE) UKVM_ERRNO(EAGAIN)
    UKVM_ERRNO(ENAMETOOLONG) UKVM_ERRNO(ENOSYS) UKVM_ERRNO(ENETDOWN) UKVM_ERRNO(EOPNOTSUPP)
#ifdef ENOTCAPABLE
    UKVM_ERRNO(ENOTCAPABLE)  // Capsicum: the descriptor lacks the right
#endif
#ifdef ECAPMODE
    UKVM_ERRNO(ECAPMODE)  // Capsicum: not allowed in capability mode
#endif
#undef UKVM_ERRNO
    default:
      return "UNKNOWN";
  }
}

}  // namespace ukvm
