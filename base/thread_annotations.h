// Thread-safety annotations: let clang's -Wthread-safety prove that a member guarded by a mutex
// is only touched with that mutex held.
//
//   Mutex mu_;                          // base/mutex.h
//   int count_ GUARDED_BY(mu_);
//   void Bump() EXCLUDES(mu_);          // takes mu_ itself
//   void BumpLocked() REQUIRES(mu_);    // the caller holds mu_
//
// The macros expand to clang attributes under clang and to nothing elsewhere (gcc ignores them),
// so annotated code builds everywhere and is checked wherever clang builds it (-Wthread-safety,
// on in every clang build). libstdc++'s std::mutex carries no capability attribute: guard with
// the Mutex of base/mutex.h, which has one.
#pragma once

#if defined(__clang__)
#define CLUSTERMGR_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CLUSTERMGR_THREAD_ANNOTATION(x)
#endif

// The member is read and written only with the given mutex held.
#define GUARDED_BY(x) CLUSTERMGR_THREAD_ANNOTATION(guarded_by(x))
// The data the pointer member points to is accessed only with the given mutex held.
#define PT_GUARDED_BY(x) CLUSTERMGR_THREAD_ANNOTATION(pt_guarded_by(x))
// The mutex must be taken after (before) the given ones.
#define ACQUIRED_AFTER(...) CLUSTERMGR_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) CLUSTERMGR_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
// The caller must hold the given mutexes (exclusively / shared).
#define REQUIRES(...) CLUSTERMGR_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CLUSTERMGR_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// The caller must not hold the given mutexes (the function takes them).
#define EXCLUDES(...) CLUSTERMGR_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// The function takes (releases) the given mutexes and returns holding (not holding) them.
#define ACQUIRE(...) CLUSTERMGR_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CLUSTERMGR_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A type that is a lock (CAPABILITY) or holds one for its lifetime (SCOPED_CAPABILITY).
#define CAPABILITY(x) CLUSTERMGR_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY CLUSTERMGR_THREAD_ANNOTATION(scoped_lockable)
// The function returns a reference to the given mutex.
#define RETURN_CAPABILITY(x) CLUSTERMGR_THREAD_ANNOTATION(lock_returned(x))
// Opt one function out of the analysis; say why beside it.
#define NO_THREAD_SAFETY_ANALYSIS CLUSTERMGR_THREAD_ANNOTATION(no_thread_safety_analysis)
