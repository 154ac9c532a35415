// Reference-counted guest RAM mappings (see guest_mapping.h) and the one
// export that shares one with another thread: shareMemory(memory).
//
// N-API cannot make a SharedArrayBuffer over memory it did not allocate, so
// shareMemory uses V8 directly: SharedArrayBuffer::NewBackingStore with a
// deleter of our own, then hands the object back as a napi_value. That last
// step relies on how Node implements N-API (a napi_value is the address of
// a V8 handle slot, v8impl::JsValueFromV8LocalValue); it is so in every Node
// from 10 to 22, and test/kvm/guest-memory-share.test.ts checks that the
// result is a SharedArrayBuffer aliasing the given memory.
#include "guest_mapping.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <v8.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace ukvm {

namespace {

// One mapping of guest RAM. `holders` counts what keeps the pages mapped
// (the VM thread's ArrayBuffer until it is collected or released early,
// and each SharedArrayBuffer backing store); `refs` counts what still
// points at this struct (the ArrayBuffer's finalizer and each backing
// store's deleter), so the struct outlives the last of them.
struct Mapping {
  void* p;
  size_t len;
  std::atomic<int> holders;
  std::atomic<int> refs;
  std::atomic<bool> buffer_released;
};

// Live mappings by address, so shareMemory and an early release can find
// the one an ArrayBuffer shows. Guarded by a mutex: buffers are collected
// on any thread.
std::mutex g_lock;
std::unordered_map<void*, Mapping*> g_mappings;

void DropHolder(Mapping* m) {
  if (m->holders.fetch_sub(1) != 1) return;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_mappings.find(m->p);
    if (it != g_mappings.end() && it->second == m) g_mappings.erase(it);
  }
  munmap(m->p, m->len);
}

void DropRef(Mapping* m) {
  if (m->refs.fetch_sub(1) == 1) delete m;
}

// The VM thread's ArrayBuffer lets go of the pages, once (early or at collection).
void ReleaseBuffer(Mapping* m) {
  if (!m->buffer_released.exchange(true)) DropHolder(m);
}

void FinalizeArrayBuffer(Napi::Env, void*, Mapping* m) {
  ReleaseBuffer(m);
  DropRef(m);
}

void DeleteBackingStore(void*, size_t, void* data) {
  Mapping* m = static_cast<Mapping*>(data);
  DropHolder(m);
  DropRef(m);
}

}  // namespace

Napi::ArrayBuffer GuestMappingBuffer(Napi::Env env, void* p, size_t len) {
  auto* m = new Mapping{p, len, {1}, {1}, {false}};
  {
    std::lock_guard<std::mutex> hold(g_lock);
    g_mappings[p] = m;
  }
  return Napi::ArrayBuffer::New(env, p, len, FinalizeArrayBuffer, m);
}

bool ReleaseGuestMapping(void* p, size_t len) {
  Mapping* m = nullptr;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_mappings.find(p);
    if (it == g_mappings.end() || it->second->len != len || it->second->buffer_released.load()) return false;
    m = it->second;
    m->refs.fetch_add(1);  // kept while we use it, whatever the finalizer does meanwhile
  }
  ReleaseBuffer(m);
  DropRef(m);
  return true;
}

// shareMemory(memory): a SharedArrayBuffer over the same pages as the guest
// memory ArrayBuffer `memory` (made by createVm). Throws a TypeError for any
// other buffer.
static Napi::Value ShareMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(env, "expected the guest memory ArrayBuffer");
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  Mapping* m = nullptr;
  {
    std::lock_guard<std::mutex> hold(g_lock);
    auto it = g_mappings.find(ab.Data());
    if (it != g_mappings.end() && it->second->len == ab.ByteLength() && !it->second->buffer_released.load()) {
      m = it->second;
      m->holders.fetch_add(1);
      m->refs.fetch_add(1);
    }
  }
  if (!m) {
    ThrowType(env, "not a guest memory buffer");
    return env.Undefined();
  }
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(m->p, m->len, DeleteBackingStore, m);
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(store));
  return Napi::Value(env, reinterpret_cast<napi_value>(*sab));
}

// V8 frees a SharedArrayBuffer's backing store when its last holder goes,
// which can be while an isolate is disposed, after Node has unloaded the
// addon of the worker that loaded it last; the deleter above must still be
// there then. So the addon pins itself once loaded (RTLD_NODELETE).
static void PinAddon() {
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&DeleteBackingStore), &self) && self.dli_fname) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

void RegisterGuestMapping(Napi::Env env, Napi::Object exports) {
  PinAddon();
  exports.Set("shareMemory", Napi::Function::New(env, ShareMemory));
}

}  // namespace ukvm
