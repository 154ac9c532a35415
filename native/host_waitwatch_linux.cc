// Waiting on POLL's wait set without blocking the thread, for several VMs
// sharing one thread (monitor/library/scheduler.ts): a uv_poll_t on the epoll
// descriptor, in the calling thread's own libuv loop (a worker's loop in a
// library worker). The epoll descriptor is readable when any member is, the
// vCPU's wake eventfd included, so a stop or SIGINT/SIGTERM ends the wait.
//
// One watcher per wait set, made once (uv_poll_init makes the system calls a
// confined thread may not: ioctl FIONBIO and an epoll_ctl probe), then armed
// once per blocked POLL. A watch is one-shot: the poll is stopped before the
// callback runs. The callback runs through napi_make_callback (a callback
// scope: microtasks run after it), never after cancel or close. Memory is
// freed in uv_close's callback; an environment that ends with watchers open
// closes them through an async cleanup hook, so its loop closes cleanly.
#include "native_util.h"

#include <uv.h>

#include <unordered_map>

namespace ukvm {
namespace {

struct Watcher {
  uv_poll_t poll;
  napi_env env = nullptr;
  Napi::FunctionReference callback;
  napi_async_cleanup_hook_handle hook = nullptr;
  double id = 0;
  bool armed = false;
  bool closing = false;
};

// Watchers of this thread's environment by id: JavaScript never holds a
// pointer, so a stale id after close finds nothing.
struct Table {
  std::unordered_map<double, Watcher*> live;
  double next = 1;
};
thread_local Table t_table;

void OnClosed(uv_handle_t* h) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->hook) napi_remove_async_cleanup_hook(w->hook);
  delete w;
}

void Close(Watcher* w) {
  if (w->closing) return;
  w->closing = true;
  w->armed = false;
  t_table.live.erase(w->id);
  w->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);  // stops the poll at once
}

// The environment is ending: close what JavaScript left open.
void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) { Close(static_cast<Watcher*>(arg)); }

void OnReady(uv_poll_t* p, int status, int events) {
  Watcher* w = static_cast<Watcher*>(p->data);
  uv_poll_stop(p);  // one-shot, before anything else can re-enter
  if (!w->armed || w->closing) return;
  w->armed = false;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  // The callback may close this watcher: w stays valid until OnClosed.
  w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, status < 0 ? status : events)});
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

Watcher* Find(const Napi::CallbackInfo& info) {
  double id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  auto it = t_table.live.find(id);
  return it == t_table.live.end() ? nullptr : it->second;
}

}  // namespace

// waitsetWatcher(epfd, callback): a watcher of epfd on this thread's loop,
// not armed. Returns its id. callback(events) runs on this thread once per
// waitsetWatch() after which epfd became readable (events < 0: a libuv error).
static Napi::Value WaitsetWatcher(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ep;
  if (!ArgInt(info, 0, &ep)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsFunction()) {
    ThrowType(env, "expected (epfd, callback)");
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    ThrowType(env, "no event loop on this thread");
    return env.Undefined();
  }
  Watcher* w = new Watcher();
  int r = uv_poll_init(loop, &w->poll, ep);
  if (r != 0) {
    delete w;
    ThrowErrno(env, "uv_poll_init", -r);
    return env.Undefined();
  }
  w->poll.data = w;
  w->env = env;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->id = t_table.next++;
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, w, &w->hook) != napi_ok) w->hook = nullptr;
  t_table.live[w->id] = w;
  return Napi::Number::New(env, w->id);
}

// waitsetWatch(id): arms the watcher once; false if it is closed.
static Napi::Value WaitsetWatch(const Napi::CallbackInfo& info) {
  Watcher* w = Find(info);
  if (w == nullptr) return Napi::Boolean::New(info.Env(), false);
  int r = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, OnReady);
  if (r != 0) {
    ThrowErrno(info.Env(), "uv_poll_start", -r);
    return info.Env().Undefined();
  }
  w->armed = true;
  return Napi::Boolean::New(info.Env(), true);
}

// waitsetCancel(id): disarms; true if a watch was pending (its callback will
// not run), false if none was (fired, never armed, or closed).
static Napi::Value WaitsetCancel(const Napi::CallbackInfo& info) {
  Watcher* w = Find(info);
  bool was = w != nullptr && w->armed;
  if (w != nullptr) {
    w->armed = false;
    uv_poll_stop(&w->poll);
  }
  return Napi::Boolean::New(info.Env(), was);
}

// waitsetUnwatch(id): closes the watcher (the callback never runs again);
// closing twice, or an unknown id, does nothing. Close it before the epoll
// descriptor.
static Napi::Value WaitsetUnwatch(const Napi::CallbackInfo& info) {
  Watcher* w = Find(info);
  if (w != nullptr) Close(w);
  return info.Env().Undefined();
}

void RegisterWaitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("waitsetWatcher", Napi::Function::New(env, WaitsetWatcher));
  exports.Set("waitsetWatch", Napi::Function::New(env, WaitsetWatch));
  exports.Set("waitsetCancel", Napi::Function::New(env, WaitsetCancel));
  exports.Set("waitsetUnwatch", Napi::Function::New(env, WaitsetUnwatch));
}

}  // namespace ukvm
