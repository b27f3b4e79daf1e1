/*
 * Tandem's statement guard: a SQLite loadable extension that gives a connection a time limit per
 * statement and lets any thread cancel what it is running.
 *
 * The SQLite binding Tandem uses has neither sqlite3_interrupt() nor a progress handler, and a
 * worker thread cannot be terminated while it is inside the binding. It can load extensions, and
 * an extension is handed the connection's own SQLite (the binding's, linked in), so this file
 * reaches both through that door. It is loaded in two roles:
 *
 *   sqlite3_tandemguard_watch    on a connection that runs client SQL. Installs a progress
 *                                handler and a statement-start trace; registers the connection
 *                                in a process-wide table and remembers it as the calling thread's
 *                                last watched connection. Registers no SQL function: nothing
 *                                here is reachable from client SQL.
 *   sqlite3_tandemguard_control  on a private in-memory connection of each thread. Registers the
 *                                functions Tandem calls: tandem_guard_last(), tandem_guard_limit(id,
 *                                ms), tandem_guard_result_limit(bytes), tandem_guard_exempt(id, on), tandem_guard_cancel(id), tandem_guard_reason(id),
 *                                tandem_guard_reset(id), tandem_guard_stop_on_signals(),
 *                                tandem_guard_forget(id).
 *
 * A watched statement stops (SQLITE_INTERRUPT) when it has run longer than its connection's
 * limit, when its result has grown past the connection's result limit, or when its connection
 * is cancelled. A cancel stays raised until tandem_guard_reset():
 * one that arrives between two statements stops the next one, and the caller, who knows which
 * read it meant, runs that one again (reads change nothing).
 */
#define _POSIX_C_SOURCE 200809L
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Virtual machine steps between two checks: a few microseconds of work. */
#define CHECK_EVERY_STEPS 1000
#define GUARDS_MAX 65536

enum { REASON_NONE = 0, REASON_TIME_LIMIT = 1, REASON_CANCELLED = 2, REASON_STOPPING = 3, REASON_RESULT_TOO_LARGE = 4 };

/* How a result's size is counted: each value's bytes (8 for a number), plus this much per value. */
#define VALUE_OVERHEAD_BYTES 16

typedef struct Guard {
  int id;
  /* Nanoseconds a statement may run; 0 is no limit. Written by the connection's thread. */
  _Atomic int64_t limit_ns;
  /* When the running top-level statement began (CLOCK_MONOTONIC). */
  _Atomic int64_t started_ns;
  _Atomic int cancelled;
  _Atomic int reason;
  /* Bytes a statement's result may hold (see VALUE_OVERHEAD_BYTES); 0 is no limit. */
  _Atomic int64_t result_limit;
  /* The running statement's result so far; only the connection's thread touches these. */
  int64_t result_bytes;
  int over_result;
  /* Tandem's own work (a checksum over every table): no time or result limit, still cancellable. */
  _Atomic int exempt;
} Guard;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static Guard *registry[GUARDS_MAX];
static int next_slot = 1;
static _Thread_local int last_watched = 0;
/* The result limit of every connection watched from then on (bytes; 0: none). */
static _Atomic int64_t default_result_limit = 0;
/* When SIGTERM or SIGINT arrived (0: never): statements running then are stopped. */
static _Atomic int64_t signalled_ns = 0;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int on_progress(void *arg) {
  Guard *guard = arg;
  int64_t signalled = atomic_load_explicit(&signalled_ns, memory_order_relaxed);
  if (signalled != 0 && atomic_load_explicit(&guard->started_ns, memory_order_relaxed) <= signalled) {
    atomic_store(&guard->reason, REASON_STOPPING);
    return 1;
  }
  if (atomic_load_explicit(&guard->cancelled, memory_order_relaxed)) {
    atomic_store(&guard->reason, REASON_CANCELLED);
    return 1;
  }
  if (atomic_load_explicit(&guard->exempt, memory_order_relaxed)) return 0;
  if (guard->over_result) {
    atomic_store(&guard->reason, REASON_RESULT_TOO_LARGE);
    return 1;
  }
  int64_t limit = atomic_load_explicit(&guard->limit_ns, memory_order_relaxed);
  if (limit > 0 && now_ns() - atomic_load_explicit(&guard->started_ns, memory_order_relaxed) > limit) {
    atomic_store(&guard->reason, REASON_TIME_LIMIT);
    return 1;
  }
  return 0;
}

/* The size of the row `statement` just produced, counted as result_limit counts it. */
static int64_t row_bytes(sqlite3_stmt *statement) {
  int columns = sqlite3_column_count(statement);
  int64_t bytes = 0;
  for (int i = 0; i < columns; i++) {
    int type = sqlite3_column_type(statement, i);
    bytes += VALUE_OVERHEAD_BYTES;
    if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) bytes += 8;
    else if (type == SQLITE_TEXT || type == SQLITE_BLOB) bytes += sqlite3_column_bytes(statement, i);
  }
  return bytes;
}

/*
 * SQLITE_TRACE_STMT: a statement begins, or a trigger inside one.
 * SQLITE_TRACE_ROW: the statement produced a row of its result. One past the result limit marks
 * the guard, and the progress handler stops the statement at its next call: the rows a caller
 * already holds are dropped with the error it then gets.
 */
static int on_trace(unsigned type, void *arg, void *statement, void *text) {
  Guard *guard = arg;
  if (type == SQLITE_TRACE_ROW) {
    int64_t limit = atomic_load_explicit(&guard->result_limit, memory_order_relaxed);
    if (limit > 0 && !guard->over_result && !atomic_load_explicit(&guard->exempt, memory_order_relaxed)) {
      guard->result_bytes += row_bytes(statement);
      if (guard->result_bytes > limit) guard->over_result = 1;
    }
    return 0;
  }
  /*
   * A trigger's program reports "-- TRIGGER …" on the statement that fired it; the statement
   * itself reports its own SQL (which may well begin with a client's "--" comment).
   */
  const char *sql = text;
  const char *own = sqlite3_sql(statement);
  if (type == SQLITE_TRACE_STMT && (sql == own || (sql != NULL && own != NULL && strcmp(sql, own) == 0))) {
    atomic_store_explicit(&guard->started_ns, now_ns(), memory_order_relaxed);
    guard->result_bytes = 0;
    guard->over_result = 0;
  }
  return 0;
}

/*
 * SIGTERM and SIGINT: the statements running when one arrives stop, so that a thread busy in
 * SQLite (the event loop's included) returns to Node, whose handler (installed before this one,
 * and called from it) then stops the node. Statements begun after the signal run as usual.
 */
static struct sigaction previous_term, previous_int;

static void on_signal(int number, siginfo_t *info, void *context) {
  atomic_store(&signalled_ns, now_ns());
  struct sigaction *previous = number == SIGTERM ? &previous_term : &previous_int;
  if (previous->sa_flags & SA_SIGINFO) {
    if (previous->sa_sigaction != NULL) previous->sa_sigaction(number, info, context);
  } else if (previous->sa_handler == SIG_DFL) {
    signal(number, SIG_DFL);
    raise(number);
  } else if (previous->sa_handler != SIG_IGN && previous->sa_handler != NULL) {
    previous->sa_handler(number);
  }
}

static void hook(int number, struct sigaction *previous) {
  struct sigaction ours;
  sigaction(number, NULL, previous);
  memset(&ours, 0, sizeof ours);
  ours.sa_sigaction = on_signal;
  ours.sa_mask = previous->sa_mask;
  ours.sa_flags = (previous->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
  sigaction(number, &ours, NULL);
}

/* Called by SQLite when the watched connection closes. */
static void release(void *arg) {
  Guard *guard = arg;
  pthread_mutex_lock(&registry_lock);
  if (registry[guard->id] == guard) registry[guard->id] = NULL;
  pthread_mutex_unlock(&registry_lock);
  free(guard);
}

static int watch(sqlite3 *db, char **error) {
  Guard *guard = calloc(1, sizeof(Guard));
  if (guard == NULL) return SQLITE_NOMEM;
  pthread_mutex_lock(&registry_lock);
  for (int tried = 0; tried < GUARDS_MAX - 1 && guard->id == 0; tried++) {
    int slot = next_slot;
    next_slot = next_slot + 1 == GUARDS_MAX ? 1 : next_slot + 1;
    if (registry[slot] == NULL) {
      registry[slot] = guard;
      guard->id = slot;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  if (guard->id == 0) {
    free(guard);
    *error = sqlite3_mprintf("tandem statement guard: more than %d connections are watched", GUARDS_MAX - 1);
    return SQLITE_ERROR;
  }
  atomic_store(&guard->started_ns, now_ns());
  atomic_store(&guard->result_limit, atomic_load(&default_result_limit));
  int rc = sqlite3_set_clientdata(db, "tandem_guard", guard, release);
  if (rc != SQLITE_OK) {
    release(guard);
    return rc;
  }
  sqlite3_progress_handler(db, CHECK_EVERY_STEPS, on_progress, guard);
  sqlite3_trace_v2(db, SQLITE_TRACE_STMT | SQLITE_TRACE_ROW, on_trace, guard);
  last_watched = guard->id;
  return SQLITE_OK;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_tandemguard_watch(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  return watch(db, error);
}

/* Runs `action` on the guard with id argv[0] under the registry lock; false if it is gone. */
static int with_guard(sqlite3_value *id_value, void (*action)(Guard *, void *), void *arg) {
  sqlite3_int64 id = sqlite3_value_int64(id_value);
  if (id <= 0 || id >= GUARDS_MAX) return 0;
  pthread_mutex_lock(&registry_lock);
  Guard *guard = registry[id];
  if (guard != NULL) action(guard, arg);
  pthread_mutex_unlock(&registry_lock);
  return guard != NULL;
}

static void do_limit(Guard *guard, void *arg) { atomic_store(&guard->limit_ns, *(int64_t *)arg); }
static void do_exempt(Guard *guard, void *arg) { atomic_store(&guard->exempt, *(int *)arg); }
static void do_cancel(Guard *guard, void *arg) { (void)arg; atomic_store(&guard->cancelled, 1); }
static void do_reset(Guard *guard, void *arg) {
  (void)arg;
  atomic_store(&guard->cancelled, 0);
  atomic_store(&guard->reason, REASON_NONE);
}
static void do_reason(Guard *guard, void *arg) { *(int *)arg = atomic_load(&guard->reason); }

static void fn_stop_on_signals(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
  static int hooked = 0;
  pthread_mutex_lock(&once);
  if (!hooked) {
    hook(SIGTERM, &previous_term);
    hook(SIGINT, &previous_int);
    hooked = 1;
  }
  pthread_mutex_unlock(&once);
  sqlite3_result_int(context, 1);
}

static void fn_last(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int(context, last_watched);
}

static void fn_limit(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  double ms = sqlite3_value_double(argv[1]);
  int64_t ns = ms <= 0 ? 0 : ms >= 9.2e12 ? INT64_MAX : (int64_t)(ms * 1e6);
  sqlite3_result_int(context, with_guard(argv[0], do_limit, &ns));
}

/* tandem_guard_result_limit(bytes): every connection watched from now on gets it; -1 only reads it. */
static void fn_result_limit(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  int64_t bytes = sqlite3_value_int64(argv[0]);
  if (bytes >= 0) atomic_store(&default_result_limit, bytes);
  sqlite3_result_int64(context, atomic_load(&default_result_limit));
}

static void fn_exempt(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  int on = sqlite3_value_int(argv[1]) != 0;
  sqlite3_result_int(context, with_guard(argv[0], do_exempt, &on));
}

static void fn_cancel(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_result_int(context, with_guard(argv[0], do_cancel, NULL));
}

static void fn_reset(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_result_int(context, with_guard(argv[0], do_reset, NULL));
}

/*
 * The thread that held the connection was ended without closing it: its slot is freed for
 * another connection (the guard itself is freed if SQLite ever closes that connection).
 */
static void fn_forget(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_int64 id = sqlite3_value_int64(argv[0]);
  int forgotten = 0;
  if (id > 0 && id < GUARDS_MAX) {
    pthread_mutex_lock(&registry_lock);
    forgotten = registry[id] != NULL;
    registry[id] = NULL;
    pthread_mutex_unlock(&registry_lock);
  }
  sqlite3_result_int(context, forgotten);
}

static void fn_reason(sqlite3_context *context, int argc, sqlite3_value **argv) {
  (void)argc;
  int reason = REASON_NONE;
  with_guard(argv[0], do_reason, &reason);
  sqlite3_result_int(context, reason);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_tandemguard_control(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  (void)error;
  SQLITE_EXTENSION_INIT2(api);
  int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc = sqlite3_create_function(db, "tandem_guard_last", 0, flags, NULL, fn_last, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_limit", 2, flags, NULL, fn_limit, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_result_limit", 1, flags, NULL, fn_result_limit, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_cancel", 1, flags, NULL, fn_cancel, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_exempt", 2, flags, NULL, fn_exempt, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_reset", 1, flags, NULL, fn_reset, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_reason", 1, flags, NULL, fn_reason, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_stop_on_signals", 0, flags, NULL, fn_stop_on_signals, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "tandem_guard_forget", 1, flags, NULL, fn_forget, NULL, NULL);
  return rc;
}
