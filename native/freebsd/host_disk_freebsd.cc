// The size of a block device's backing store on FreeBSD. Disks are character
// devices there, and lseek(fd, 0, SEEK_END) on them says 0; the size comes
// from the DIOCGMEDIASIZE ioctl instead. Regular files: their end, as on Linux.
#include "../native_util.h"
#include "fbsd_sys.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukvm {

// diskSize(fd): the size in bytes (BigInt) of a file or disk device.
static Napi::Value DiskSize(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ThrowErrno(info.Env(), "fstat", errno);
    return info.Env().Undefined();
  }
  if (S_ISCHR(st.st_mode)) {
    int64_t size = 0;
    if (ioctl(fd, fbsd::kDiocGMediaSize, &size) != 0) {
      ThrowErrno(info.Env(), "DIOCGMEDIASIZE", errno);
      return info.Env().Undefined();
    }
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(size));
  }
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0) {
    ThrowErrno(info.Env(), "lseek", errno);
    return info.Env().Undefined();
  }
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(end));
}

void RegisterDisk(Napi::Env env, Napi::Object exports) { exports.Set("diskSize", Napi::Function::New(env, DiskSize)); }

}  // namespace ukvm
