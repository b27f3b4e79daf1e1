/*
 * Tandem's own SQLite binding: a Node-API addon over the SQLite amalgamation, built with the same
 * compile options as the published binding (scripts/build-native.js). It exists for what the
 * published bindings do not expose:
 *
 *   - sessions that capture tables without a PRIMARY KEY, by rowid
 *     (SQLITE_SESSION_OBJCONFIG_ROWID); sqlite_sequence stays out of changesets, as before;
 *   - exact binding: a JS number binds as an INTEGER only when it is an integer a double holds
 *     exactly (a safe integer, |n| < 2^53, not -0), otherwise as a REAL, never rounded to an int32; a
 *     Float64Array of one element binds as a REAL even when integral (the REAL `1.0`);
 *   - text in and out by length, so a NUL inside a string survives both ways.
 *
 * Its JavaScript surface is the subset of node:sqlite's DatabaseSync and StatementSync that
 * src/storage/sqlite.ts types (iterate() is added there, over _bind/_step/_reset).
 *
 * Memory: a Db outlives its statements and sessions. Each holds a reference count on it; closing
 * the database finalizes every statement and deletes every session it owns (they then throw
 * "database is not open"), and the last holder frees the Db.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"

typedef struct Stmt Stmt;
typedef struct Sess Sess;

/* The head of a Stmt and of a Sess: their Db keeps each kind in a list, to close them with it. */
typedef struct Node {
  struct Node *prev, *next;
} Node;

typedef struct Db {
  sqlite3 *db;
  napi_env env;
  int refs;
  int allow_extension;
  int read_big_ints_default;
  napi_ref authorizer;
  /* Action codes the authorizer allows without a call into JavaScript (setAuthorizer's second argument). */
  unsigned char allowed[64];
  /* Set when a JavaScript callback threw inside SQLite: the JS exception is the error. */
  int callback_threw;
  Node *stmts;
  Node *sessions;
} Db;

struct Stmt {
  Node node;
  Db *db;
  sqlite3_stmt *stmt;
  int read_big_ints;
  int return_arrays;
};

struct Sess {
  Node node;
  Db *db;
  sqlite3_session *session;
};

typedef struct Classes {
  napi_ref statement;
  napi_ref session;
} Classes;

/* A token that only this file holds: Statement and Session are made by Database, not by JS. */
static int construct_token;

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return NULL;               \
  } while (0)

static int pending(napi_env env) {
  bool is = false;
  napi_is_exception_pending(env, &is);
  return is;
}

static napi_value throw_coded(napi_env env, const char *code, const char *message) {
  if (!pending(env)) napi_throw_error(env, code, message);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *code, const char *message) {
  if (!pending(env)) napi_throw_type_error(env, code, message);
  return NULL;
}

/* An error SQLite reported; `code` is used when there is no connection to ask. */
static napi_value throw_sqlite(napi_env env, Db *d, int code) {
  if (d != NULL && d->callback_threw) {
    d->callback_threw = 0;
    if (pending(env)) return NULL;
  }
  if (pending(env)) return NULL;
  sqlite3 *db = d == NULL ? NULL : d->db;
  int extended = db != NULL ? sqlite3_extended_errcode(db) : code;
  if (extended == SQLITE_OK) extended = code;
  const char *message = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  napi_value msg, error, value;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, msg, &error) != napi_ok) return NULL;
  napi_create_string_utf8(env, "ERR_SQLITE_ERROR", NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "code", value);
  napi_create_int32(env, extended, &value);
  napi_set_named_property(env, error, "errcode", value);
  napi_create_int32(env, extended & 0xff, &value);
  napi_set_named_property(env, error, "sqliteCode", value);
  napi_create_string_utf8(env, sqlite3_errstr(extended), NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "errstr", value);
  napi_throw(env, error);
  return NULL;
}

/* ---- reference counting -------------------------------------------------------------------- */

static void list_push(Node **head, Node *n) {
  n->prev = NULL;
  n->next = *head;
  if (*head != NULL) (*head)->prev = n;
  *head = n;
}

static void list_remove(Node **head, Node *n) {
  if (n->prev != NULL) n->prev->next = n->next;
  else if (*head == n) *head = n->next;
  if (n->next != NULL) n->next->prev = n->prev;
  n->prev = n->next = NULL;
}

static void db_close_handles(Db *d) {
  for (Node *n = d->stmts; n != NULL; n = n->next) {
    Stmt *s = (Stmt *)n;
    sqlite3_finalize(s->stmt);
    s->stmt = NULL;
  }
  d->stmts = NULL;
  for (Node *n = d->sessions; n != NULL; n = n->next) {
    Sess *s = (Sess *)n;
    sqlite3session_delete(s->session);
    s->session = NULL;
  }
  d->sessions = NULL;
  if (d->db != NULL) {
    sqlite3_close_v2(d->db);
    d->db = NULL;
  }
  if (d->authorizer != NULL) {
    napi_delete_reference(d->env, d->authorizer);
    d->authorizer = NULL;
  }
}

static void db_release(Db *d) {
  if (--d->refs > 0) return;
  db_close_handles(d);
  free(d);
}

static void db_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Db *d = data;
  db_close_handles(d);
  db_release(d);
}

static void stmt_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Stmt *s = data;
  if (s->stmt != NULL) {
    list_remove(&s->db->stmts, &s->node);
    sqlite3_finalize(s->stmt);
  }
  db_release(s->db);
  free(s);
}

static void sess_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Sess *s = data;
  if (s->session != NULL) {
    list_remove(&s->db->sessions, &s->node);
    sqlite3session_delete(s->session);
  }
  db_release(s->db);
  free(s);
}

/* ---- argument helpers ---------------------------------------------------------------------- */

typedef struct Args {
  size_t argc;
  napi_value argv[8];
  napi_value self;
  void *data;
} Args;

/* Up to 8 arguments; statements take any number through with_params(). */
static int get_args(napi_env env, napi_callback_info info, Args *a) {
  a->argc = 8;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, &a->self, &a->data) != napi_ok) return 0;
  if (a->argc > 8) a->argc = 8;
  return 1;
}

static Db *this_db(napi_env env, napi_value self, int must_be_open);

/* A Database method's arguments and its Db; NULL (an exception pending) when it cannot run. */
static Db *db_call(napi_env env, napi_callback_info info, Args *a, int must_be_open) {
  if (!get_args(env, info, a)) return NULL;
  return this_db(env, a->self, must_be_open);
}

static Db *this_db(napi_env env, napi_value self, int must_be_open) {
  Db *d = NULL;
  if (napi_unwrap(env, self, (void **)&d) != napi_ok || d == NULL) {
    throw_type(env, "ERR_INVALID_THIS", "not a Database");
    return NULL;
  }
  if (must_be_open && d->db == NULL) {
    throw_coded(env, "ERR_INVALID_STATE", "database is not open");
    return NULL;
  }
  return d;
}

static Stmt *this_stmt(napi_env env, napi_value self) {
  Stmt *s = NULL;
  if (napi_unwrap(env, self, (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "ERR_INVALID_THIS", "not a Statement");
    return NULL;
  }
  if (s->db->db == NULL) {
    throw_coded(env, "ERR_INVALID_STATE", "database is not open");
    return NULL;
  }
  return s;
}

/* A UTF-8 copy of a JS string, NUL-terminated; *length excludes the terminator. Free it. */
static char *utf8_of(napi_env env, napi_value value, size_t *length) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &n) != napi_ok) return NULL;
  char *text = malloc(n + 1);
  if (text == NULL) {
    throw_coded(env, "ERR_MEMORY", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, text, n + 1, &n);
  if (length != NULL) *length = n;
  return text;
}

/* options[name] when it is of `type`, else NULL (absent, or of another type: the default holds). */
static napi_value option_of(napi_env env, napi_value options, const char *name, napi_valuetype type) {
  bool has = false;
  if (options == NULL || napi_has_named_property(env, options, name, &has) != napi_ok || !has) return NULL;
  napi_value value;
  napi_valuetype actual;
  if (napi_get_named_property(env, options, name, &value) != napi_ok || napi_typeof(env, value, &actual) != napi_ok) return NULL;
  return actual == type ? value : NULL;
}

static int bool_option(napi_env env, napi_value options, const char *name, int fallback) {
  napi_value value = option_of(env, options, name, napi_boolean);
  bool b = fallback;
  if (value != NULL) napi_get_value_bool(env, value, &b);
  return b;
}

static int64_t number_option(napi_env env, napi_value options, const char *name, int64_t fallback) {
  napi_value value = option_of(env, options, name, napi_number);
  int64_t n = fallback;
  if (value != NULL) napi_get_value_int64(env, value, &n);
  return n;
}

/* ---- Database ------------------------------------------------------------------------------ */

/* new Database(path, { readOnly, defensive, foreignKeys, timeout, allowExtension, valueBytesMax }) */
static napi_value database_new(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  if (a.argc < 1) return throw_type(env, "ERR_INVALID_ARG_TYPE", "the database path must be a string");
  napi_valuetype type;
  napi_typeof(env, a.argv[0], &type);
  if (type != napi_string) return throw_type(env, "ERR_INVALID_ARG_TYPE", "the database path must be a string");
  size_t length = 0;
  char *path = utf8_of(env, a.argv[0], &length);
  if (path == NULL) return NULL;
  if (strlen(path) != length) {
    free(path);
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "the database path must not contain NUL");
  }
  napi_value options = NULL;
  if (a.argc > 1) {
    napi_typeof(env, a.argv[1], &type);
    if (type == napi_object) options = a.argv[1];
  }
  int read_only = bool_option(env, options, "readOnly", 0);
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_URI, NULL);
  free(path);
  if (rc != SQLITE_OK) {
    Db tmp = {.db = db};
    throw_sqlite(env, &tmp, rc);
    sqlite3_close_v2(db);
    return NULL;
  }
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, bool_option(env, options, "foreignKeys", 1), NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, bool_option(env, options, "defensive", 1), NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
  int64_t timeout = number_option(env, options, "timeout", 0);
  if (timeout > 0) sqlite3_busy_timeout(db, (int)(timeout > INT32_MAX ? INT32_MAX : timeout));
  int64_t value_bytes = number_option(env, options, "valueBytesMax", -1);
  if (value_bytes > 0) sqlite3_limit(db, SQLITE_LIMIT_LENGTH, (int)(value_bytes > INT32_MAX ? INT32_MAX : value_bytes));

  Db *d = calloc(1, sizeof(Db));
  if (d == NULL) {
    sqlite3_close_v2(db);
    return throw_coded(env, "ERR_MEMORY", "out of memory");
  }
  d->db = db;
  d->env = env;
  d->refs = 1;
  d->allow_extension = bool_option(env, options, "allowExtension", 0);
  if (napi_wrap(env, a.self, d, db_finalize, NULL, NULL) != napi_ok) {
    sqlite3_close_v2(db);
    free(d);
    return NULL;
  }
  return a.self;
}

static napi_value database_is_open(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 0);
  if (d == NULL) return NULL;
  napi_value result;
  napi_get_boolean(env, d->db != NULL, &result);
  return result;
}

static napi_value database_is_transaction(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  napi_value result;
  napi_get_boolean(env, !sqlite3_get_autocommit(d->db), &result);
  return result;
}

static napi_value database_close(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  db_close_handles(d);
  return NULL;
}

static napi_value database_exec(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  napi_valuetype type = napi_undefined;
  if (a.argc > 0) napi_typeof(env, a.argv[0], &type);
  if (type != napi_string) return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"sql\" argument must be a string.");
  char *sql = utf8_of(env, a.argv[0], NULL);
  if (sql == NULL) return NULL;
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  free(sql);
  if (rc != SQLITE_OK) return throw_sqlite(env, d, rc);
  return NULL;
}

/* A Statement or Session; it keeps its Database object alive, as node:sqlite's do. */
static napi_value new_instance(napi_env env, napi_ref class_ref, void *native, napi_finalize finalize, napi_value database) {
  napi_value constructor, token, instance;
  CHECK(napi_get_reference_value(env, class_ref, &constructor));
  CHECK(napi_create_external(env, &construct_token, NULL, NULL, &token));
  CHECK(napi_new_instance(env, constructor, 1, &token, &instance));
  napi_property_descriptor owner = {"database", NULL, NULL, NULL, NULL, database, napi_default, NULL};
  CHECK(napi_define_properties(env, instance, 1, &owner));
  if (napi_wrap(env, instance, native, finalize, NULL, NULL) != napi_ok) return NULL;
  return instance;
}

/* Statement and Session constructors: only new_instance() may call them. */
static napi_value internal_new(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  void *token = NULL;
  napi_valuetype type = napi_undefined;
  if (a.argc > 0) napi_typeof(env, a.argv[0], &type);
  if (type != napi_external || napi_get_value_external(env, a.argv[0], &token) != napi_ok || token != &construct_token) {
    return throw_type(env, "ERR_ILLEGAL_CONSTRUCTOR", "Illegal constructor");
  }
  return a.self;
}

static napi_value database_prepare(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  napi_valuetype type = napi_undefined;
  if (a.argc > 0) napi_typeof(env, a.argv[0], &type);
  if (type != napi_string) return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"sql\" argument must be a string.");
  size_t length = 0;
  char *sql = utf8_of(env, a.argv[0], &length);
  if (sql == NULL) return NULL;
  sqlite3_stmt *stmt = NULL;
  d->callback_threw = 0;
  int rc = sqlite3_prepare_v2(d->db, sql, (int)length, &stmt, NULL);
  free(sql);
  if (rc != SQLITE_OK) return throw_sqlite(env, d, rc);
  Stmt *s = calloc(1, sizeof(Stmt));
  if (s == NULL) {
    sqlite3_finalize(stmt);
    return throw_coded(env, "ERR_MEMORY", "out of memory");
  }
  Classes *classes = NULL;
  napi_get_instance_data(env, (void **)&classes);
  s->db = d;
  s->stmt = stmt;
  s->read_big_ints = d->read_big_ints_default;
  d->refs++;
  list_push(&d->stmts, &s->node);
  napi_value instance = new_instance(env, classes->statement, s, stmt_finalize, a.self);
  if (instance == NULL) {
    list_remove(&s->db->stmts, &s->node);
    sqlite3_finalize(stmt);
    db_release(d);
    free(s);
  }
  return instance;
}

static int authorize(void *data, int action, const char *a1, const char *a2, const char *a3, const char *a4) {
  Db *d = data;
  napi_env env = d->env;
  if (d->authorizer == NULL || d->callback_threw) return d->callback_threw ? SQLITE_DENY : SQLITE_OK;
  if (action >= 0 && action < 64 && d->allowed[action]) return SQLITE_OK;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return SQLITE_DENY;
  int result = SQLITE_DENY;
  napi_value fn, global, argv[5], out;
  const char *texts[4] = {a1, a2, a3, a4};
  if (napi_get_reference_value(env, d->authorizer, &fn) != napi_ok || fn == NULL) goto done;
  napi_get_undefined(env, &global);
  napi_create_int32(env, action, &argv[0]);
  for (int i = 0; i < 4; i++) {
    if (texts[i] == NULL) napi_get_null(env, &argv[i + 1]);
    else napi_create_string_utf8(env, texts[i], NAPI_AUTO_LENGTH, &argv[i + 1]);
  }
  if (napi_call_function(env, global, fn, 5, argv, &out) != napi_ok) {
    d->callback_threw = 1;
    goto done;
  }
  int32_t code = SQLITE_DENY;
  if (napi_get_value_int32(env, out, &code) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_RETURN_VALUE", "The authorizer callback must return an integer authorization code");
    d->callback_threw = 1;
    goto done;
  }
  result = code;
done:
  napi_close_handle_scope(env, scope);
  return result;
}

/*
 * setAuthorizer(callback | null, allowed?): everything is checked before anything changes, so a
 * refused call leaves the connection with the authorizer it had (never with none).
 */
static napi_value database_set_authorizer(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  napi_valuetype type = napi_undefined;
  if (a.argc > 0) napi_typeof(env, a.argv[0], &type);
  int clears = type == napi_null || type == napi_undefined;
  if (!clears && type != napi_function) return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"callback\" argument must be a function or null.");
  /* Optional: an array of action codes always allowed, answered here without calling the callback. */
  unsigned char allowed[64] = {0};
  napi_valuetype allowed_type = napi_undefined;
  if (a.argc > 1) napi_typeof(env, a.argv[1], &allowed_type);
  if (!clears && allowed_type != napi_undefined) {
    bool is_array = false;
    napi_is_array(env, a.argv[1], &is_array);
    if (!is_array) return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"allowed\" argument must be an array of action codes.");
    uint32_t length = 0;
    CHECK(napi_get_array_length(env, a.argv[1], &length));
    for (uint32_t i = 0; i < length; i++) {
      napi_value item;
      double code = -1;
      CHECK(napi_get_element(env, a.argv[1], i, &item));
      if (napi_get_value_double(env, item, &code) != napi_ok || !(code >= 0 && code < 64) || code != (double)(int)code) {
        return throw_type(env, "ERR_INVALID_ARG_TYPE", "An action code must be an integer from 0 to 63.");
      }
      allowed[(int)code] = 1;
    }
  }
  napi_ref fresh = NULL;
  if (!clears) CHECK(napi_create_reference(env, a.argv[0], 1, &fresh));
  if (d->authorizer != NULL) napi_delete_reference(env, d->authorizer);
  d->authorizer = fresh;
  memcpy(d->allowed, allowed, sizeof allowed);
  if (clears) sqlite3_set_authorizer(d->db, NULL, NULL);
  else sqlite3_set_authorizer(d->db, authorize, d);
  return NULL;
}

/* limitLength() reads SQLITE_LIMIT_LENGTH; limitLength(n) sets it and returns the old value. */
static napi_value database_limit_length(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  int next = -1;
  napi_valuetype type = napi_undefined;
  if (a.argc > 0) napi_typeof(env, a.argv[0], &type);
  if (type == napi_number) {
    int64_t n = 0;
    napi_get_value_int64(env, a.argv[0], &n);
    if (n < 0 || n > INT32_MAX) return throw_type(env, "ERR_OUT_OF_RANGE", "a length limit is between 0 and 2147483647");
    next = (int)n;
  }
  napi_value result;
  napi_create_int32(env, sqlite3_limit(d->db, SQLITE_LIMIT_LENGTH, next), &result);
  return result;
}

static napi_value database_enable_load_extension(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  bool enable = false;
  if (a.argc < 1 || napi_get_value_bool(env, a.argv[0], &enable) != napi_ok) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"allow\" argument must be a boolean.");
  }
  if (enable && !d->allow_extension) {
    return throw_coded(env, "ERR_INVALID_STATE", "Cannot enable extension loading because it was disabled at database creation.");
  }
  sqlite3_db_config(d->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, enable ? 1 : 0, NULL);
  return NULL;
}

static napi_value database_load_extension(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  if (!d->allow_extension) return throw_coded(env, "ERR_INVALID_STATE", "extension loading is not allowed");
  if (a.argc < 2) return throw_type(env, "ERR_INVALID_ARG_TYPE", "loadExtension(path, entryPoint)");
  char *path = utf8_of(env, a.argv[0], NULL);
  if (path == NULL) return NULL;
  char *entry = utf8_of(env, a.argv[1], NULL);
  if (entry == NULL) {
    free(path);
    return NULL;
  }
  char *error = NULL;
  int rc = sqlite3_load_extension(d->db, path, entry, &error);
  free(path);
  free(entry);
  if (rc != SQLITE_OK) {
    napi_value result = throw_coded(env, "ERR_LOAD_SQLITE_EXTENSION", error != NULL ? error : sqlite3_errstr(rc));
    sqlite3_free(error);
    return result;
  }
  return NULL;
}

/* sqlite_sequence travels as its own op (ops.ts): kept out of changesets, as without rowids. */
static int session_filter(void *ctx, const char *table) {
  (void)ctx;
  return sqlite3_stricmp(table, "sqlite_sequence") != 0;
}

static napi_value database_create_session(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  sqlite3_session *session = NULL;
  int rc = sqlite3session_create(d->db, "main", &session);
  if (rc != SQLITE_OK) return throw_sqlite(env, d, rc);
  int rowid = 1;
  rc = sqlite3session_object_config(session, SQLITE_SESSION_OBJCONFIG_ROWID, &rowid);
  if (rc == SQLITE_OK) {
    sqlite3session_table_filter(session, session_filter, NULL);
    rc = sqlite3session_attach(session, NULL);
  }
  if (rc != SQLITE_OK) {
    sqlite3session_delete(session);
    return throw_sqlite(env, d, rc);
  }
  Sess *s = calloc(1, sizeof(Sess));
  if (s == NULL) {
    sqlite3session_delete(session);
    return throw_coded(env, "ERR_MEMORY", "out of memory");
  }
  Classes *classes = NULL;
  napi_get_instance_data(env, (void **)&classes);
  s->db = d;
  s->session = session;
  d->refs++;
  list_push(&d->sessions, &s->node);
  napi_value instance = new_instance(env, classes->session, s, sess_finalize, a.self);
  if (instance == NULL) {
    list_remove(&s->db->sessions, &s->node);
    sqlite3session_delete(session);
    db_release(d);
    free(s);
  }
  return instance;
}

typedef struct ApplyContext {
  Db *d;
  napi_value on_conflict;
} ApplyContext;

static int apply_conflict(void *data, int kind, sqlite3_changeset_iter *iter) {
  (void)iter;
  ApplyContext *c = data;
  napi_env env = c->d->env;
  if (c->d->callback_threw) return SQLITE_CHANGESET_ABORT;
  napi_value global, argv, out;
  napi_get_undefined(env, &global);
  napi_create_int32(env, kind, &argv);
  if (napi_call_function(env, global, c->on_conflict, 1, &argv, &out) != napi_ok) {
    c->d->callback_threw = 1;
    return SQLITE_CHANGESET_ABORT;
  }
  int32_t answer = SQLITE_CHANGESET_ABORT;
  if (napi_get_value_int32(env, out, &answer) != napi_ok) return SQLITE_CHANGESET_ABORT;
  return answer;
}

static int bytes_of(napi_env env, napi_value value, const void **data, size_t *length);

/* applyChangeset(bytes, { onConflict }): true when applied, false when onConflict aborted it. */
static napi_value database_apply_changeset(napi_env env, napi_callback_info info) {
  Args a;
  Db *d = db_call(env, info, &a, 1);
  if (d == NULL) return NULL;
  const void *bytes = NULL;
  size_t length = 0;
  if (a.argc < 1 || !bytes_of(env, a.argv[0], &bytes, &length)) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"changeset\" argument must be a Uint8Array.");
  }
  ApplyContext context = {.d = d, .on_conflict = NULL};
  if (a.argc > 1) {
    napi_valuetype type;
    napi_typeof(env, a.argv[1], &type);
    if (type == napi_object) {
      napi_value fn;
      napi_get_named_property(env, a.argv[1], "onConflict", &fn);
      napi_typeof(env, fn, &type);
      if (type == napi_function) context.on_conflict = fn;
    }
  }
  if (context.on_conflict == NULL) return throw_type(env, "ERR_INVALID_ARG_TYPE", "options.onConflict must be a function");
  d->callback_threw = 0;
  int rc = sqlite3changeset_apply(d->db, (int)length, (void *)bytes, NULL, apply_conflict, &context);
  if (d->callback_threw) {
    d->callback_threw = 0;
    return NULL;
  }
  napi_value result;
  if (rc == SQLITE_OK) napi_get_boolean(env, true, &result);
  else if (rc == SQLITE_ABORT) napi_get_boolean(env, false, &result);
  else return throw_sqlite(env, d, rc);
  return result;
}

/* ---- Session ------------------------------------------------------------------------------- */

static Sess *this_sess(napi_env env, napi_value self) {
  Sess *s = NULL;
  if (napi_unwrap(env, self, (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "ERR_INVALID_THIS", "not a Session");
    return NULL;
  }
  if (s->session == NULL) {
    throw_coded(env, "ERR_INVALID_STATE", "session is not open");
    return NULL;
  }
  return s;
}

static napi_value new_bytes(napi_env env, const void *data, size_t length) {
  napi_value buffer, array;
  void *target = NULL;
  CHECK(napi_create_arraybuffer(env, length, &target, &buffer));
  if (length > 0) memcpy(target, data, length);
  CHECK(napi_create_typedarray(env, napi_uint8_array, length, buffer, 0, &array));
  return array;
}

static napi_value session_changeset(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Sess *s = this_sess(env, a.self);
  if (s == NULL) return NULL;
  int length = 0;
  void *bytes = NULL;
  int rc = sqlite3session_changeset(s->session, &length, &bytes);
  if (rc != SQLITE_OK) return throw_sqlite(env, s->db, rc);
  napi_value result = new_bytes(env, bytes, (size_t)length);
  sqlite3_free(bytes);
  return result;
}

static napi_value session_close(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Sess *s = this_sess(env, a.self);
  if (s == NULL) return NULL;
  list_remove(&s->db->sessions, &s->node);
  sqlite3session_delete(s->session);
  s->session = NULL;
  return NULL;
}

/* ---- Statement: binding -------------------------------------------------------------------- */

static int bytes_of(napi_env env, napi_value value, const void **data, size_t *length) {
  bool is = false;
  napi_is_typedarray(env, value, &is);
  if (is) {
    napi_typedarray_type type;
    size_t count = 0, offset = 0;
    napi_value buffer;
    void *start = NULL;
    napi_get_typedarray_info(env, value, &type, &count, &start, &buffer, &offset);
    size_t size = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: size = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: size = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: size = 8; break;
      default: size = 1;
    }
    *data = start;
    *length = count * size;
    return 1;
  }
  napi_is_dataview(env, value, &is);
  if (is) {
    napi_value buffer;
    size_t offset = 0;
    void *start = NULL;
    napi_get_dataview_info(env, value, length, &start, &buffer, &offset);
    *data = start;
    return 1;
  }
  napi_is_arraybuffer(env, value, &is);
  if (is) {
    void *start = NULL;
    napi_get_arraybuffer_info(env, value, &start, length);
    *data = start;
    return 1;
  }
  return 0;
}

static int bind_one(napi_env env, Stmt *s, int index, napi_value value) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  int rc = SQLITE_OK;
  switch (type) {
    case napi_null:
      rc = sqlite3_bind_null(s->stmt, index);
      break;
    case napi_number: {
      double n = 0;
      napi_get_value_double(env, value, &n);
      /* An integer a double holds exactly binds as one; anything else stays a REAL. */
      if (n == floor(n) && fabs(n) <= 9007199254740991.0 && !(n == 0 && signbit(n))) {
        rc = sqlite3_bind_int64(s->stmt, index, (sqlite3_int64)n);
      } else {
        rc = sqlite3_bind_double(s->stmt, index, n);
      }
      break;
    }
    case napi_bigint: {
      int64_t n = 0;
      bool lossless = false;
      napi_get_value_bigint_int64(env, value, &n, &lossless);
      if (!lossless) {
        throw_type(env, "ERR_INVALID_ARG_VALUE", "BigInt value is too large to bind.");
        return 0;
      }
      rc = sqlite3_bind_int64(s->stmt, index, n);
      break;
    }
    case napi_string: {
      size_t length = 0;
      char *text = utf8_of(env, value, &length);
      if (text == NULL) return 0;
      rc = sqlite3_bind_text64(s->stmt, index, text, length, free, SQLITE_UTF8);
      break;
    }
    case napi_boolean: {
      bool b = false;
      napi_get_value_bool(env, value, &b);
      rc = sqlite3_bind_int(s->stmt, index, b ? 1 : 0);
      break;
    }
    case napi_object: {
      /* A Float64Array of one element is a REAL, integral or not (sqlite.ts: SqlReal). */
      bool is_typed = false;
      napi_is_typedarray(env, value, &is_typed);
      if (is_typed) {
        napi_typedarray_type kind;
        size_t count = 0;
        void *start = NULL;
        napi_get_typedarray_info(env, value, &kind, &count, &start, NULL, NULL);
        if (kind == napi_float64_array && count == 1) {
          double real = 0;
          memcpy(&real, start, sizeof real);
          rc = sqlite3_bind_double(s->stmt, index, real);
          break;
        }
      }
      const void *data = NULL;
      size_t length = 0;
      if (bytes_of(env, value, &data, &length)) {
        rc = sqlite3_bind_blob64(s->stmt, index, data != NULL ? data : "", length, SQLITE_TRANSIENT);
        break;
      }
    }
    /* fall through */
    default: {
      char message[96];
      snprintf(message, sizeof message, "Provided value cannot be bound to SQLite parameter %d.", index);
      throw_type(env, "ERR_INVALID_ARG_TYPE", message);
      return 0;
    }
  }
  if (rc != SQLITE_OK) {
    throw_sqlite(env, s->db, rc);
    return 0;
  }
  return 1;
}

/* The index of a named parameter given without its prefix (:name, @name or $name), or 0. */
static int bare_index(sqlite3_stmt *stmt, const char *name, size_t length) {
  char *full = malloc(length + 2);
  if (full == NULL) return 0;
  memcpy(full + 1, name, length + 1);
  static const char prefixes[] = {':', '$', '@'};
  int index = 0;
  for (size_t i = 0; i < sizeof prefixes && index == 0; i++) {
    full[0] = prefixes[i];
    index = sqlite3_bind_parameter_index(stmt, full);
  }
  free(full);
  return index;
}

/*
 * Binds a call's arguments from argv[first]: an object of named values (unknown names are
 * ignored, as rqlite does), then positional values for the anonymous placeholders.
 */
static int bind_all(napi_env env, Stmt *s, size_t argc, napi_value *argv, size_t first) {
  sqlite3_reset(s->stmt);
  sqlite3_clear_bindings(s->stmt);
  size_t positional = first;
  if (argc > first) {
    napi_valuetype type;
    napi_typeof(env, argv[first], &type);
    bool is_array = false, is_typed = false, is_view = false, is_buffer = false;
    napi_is_array(env, argv[first], &is_array);
    napi_is_typedarray(env, argv[first], &is_typed);
    napi_is_dataview(env, argv[first], &is_view);
    napi_is_arraybuffer(env, argv[first], &is_buffer);
    if (type == napi_object && !is_array && !is_typed && !is_view && !is_buffer) {
      positional = first + 1;
      napi_value keys;
      if (napi_get_property_names(env, argv[first], &keys) != napi_ok) return 0;
      uint32_t count = 0;
      napi_get_array_length(env, keys, &count);
      for (uint32_t i = 0; i < count; i++) {
        napi_value key, value;
        napi_get_element(env, keys, i, &key);
        size_t length = 0;
        char *name = utf8_of(env, key, &length);
        if (name == NULL) return 0;
        int index = sqlite3_bind_parameter_index(s->stmt, name);
        if (index == 0) index = bare_index(s->stmt, name, length);
        free(name);
        if (index == 0) continue;
        if (napi_get_property(env, argv[first], key, &value) != napi_ok) return 0;
        if (!bind_one(env, s, index, value)) return 0;
      }
    }
  }
  int count = sqlite3_bind_parameter_count(s->stmt);
  int index = 1;
  for (size_t i = positional; i < argc; i++) {
    while (index <= count) {
      const char *name = sqlite3_bind_parameter_name(s->stmt, index);
      if (name == NULL || name[0] == '?') break;
      index++;
    }
    if (!bind_one(env, s, index, argv[i])) return 0;
    index++;
  }
  return 1;
}

/* ---- Statement: reading -------------------------------------------------------------------- */

static napi_value column_value(napi_env env, Stmt *s, int i) {
  napi_value value = NULL;
  switch (sqlite3_column_type(s->stmt, i)) {
    case SQLITE_INTEGER: {
      sqlite3_int64 n = sqlite3_column_int64(s->stmt, i);
      if (s->read_big_ints) {
        napi_create_bigint_int64(env, n, &value);
      } else if (n > 9007199254740991LL || n < -9007199254740991LL) {
        char message[128];
        snprintf(message, sizeof message, "Value is too large to be represented as a JavaScript number: %lld", (long long)n);
        if (!pending(env)) napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
        return NULL;
      } else {
        napi_create_int64(env, n, &value);
      }
      break;
    }
    case SQLITE_FLOAT:
      napi_create_double(env, sqlite3_column_double(s->stmt, i), &value);
      break;
    case SQLITE_TEXT: {
      const char *text = (const char *)sqlite3_column_text(s->stmt, i);
      int length = sqlite3_column_bytes(s->stmt, i);
      if (text == NULL) return throw_sqlite(env, s->db, SQLITE_NOMEM);
      napi_create_string_utf8(env, text, (size_t)length, &value);
      break;
    }
    case SQLITE_BLOB: {
      const void *data = sqlite3_column_blob(s->stmt, i);
      int length = sqlite3_column_bytes(s->stmt, i);
      value = new_bytes(env, data, (size_t)length);
      break;
    }
    default:
      napi_get_null(env, &value);
  }
  return value;
}

/* Column names as JS strings, made once per call (rows as objects only). */
typedef struct Keys {
  int count;
  napi_value *names;
} Keys;

static int keys_make(napi_env env, Stmt *s, Keys *keys) {
  keys->count = sqlite3_column_count(s->stmt);
  keys->names = NULL;
  if (s->return_arrays || keys->count == 0) return 1;
  keys->names = malloc(sizeof(napi_value) * (size_t)keys->count);
  if (keys->names == NULL) {
    throw_coded(env, "ERR_MEMORY", "out of memory");
    return 0;
  }
  for (int i = 0; i < keys->count; i++) {
    const char *name = sqlite3_column_name(s->stmt, i);
    if (napi_create_string_utf8(env, name != NULL ? name : "", NAPI_AUTO_LENGTH, &keys->names[i]) != napi_ok) return 0;
  }
  return 1;
}

static napi_value row_of(napi_env env, Stmt *s, Keys *keys) {
  napi_value row;
  int count = sqlite3_column_count(s->stmt);
  if (s->return_arrays) {
    CHECK(napi_create_array_with_length(env, (size_t)count, &row));
    for (int i = 0; i < count; i++) {
      napi_value value = column_value(env, s, i);
      if (value == NULL) return NULL;
      CHECK(napi_set_element(env, row, (uint32_t)i, value));
    }
    return row;
  }
  /* Defined, not assigned: a column named __proto__ is a column like any other. */
  napi_property_descriptor small[32];
  napi_property_descriptor *properties = count <= 32 ? small : malloc(sizeof(napi_property_descriptor) * (size_t)count);
  if (properties == NULL) return throw_coded(env, "ERR_MEMORY", "out of memory");
  napi_value result = NULL;
  if (napi_create_object(env, &row) != napi_ok) goto done;
  for (int i = 0; i < count; i++) {
    napi_value value = column_value(env, s, i);
    if (value == NULL) goto done;
    napi_value key;
    if (keys != NULL && keys->names != NULL && i < keys->count) key = keys->names[i];
    else if (napi_create_string_utf8(env, sqlite3_column_name(s->stmt, i), NAPI_AUTO_LENGTH, &key) != napi_ok) goto done;
    properties[i] = (napi_property_descriptor){NULL, key, NULL, NULL, NULL, value, napi_default_jsproperty, NULL};
  }
  if (napi_define_properties(env, row, (size_t)count, properties) == napi_ok) result = row;
done:
  if (properties != small) free(properties);
  return result;
}

/* A failed step: the error, taken before reset() can change it. */
static napi_value step_failed(napi_env env, Stmt *s, int rc) {
  throw_sqlite(env, s->db, rc);
  sqlite3_reset(s->stmt);
  return NULL;
}

typedef napi_value (*ParamsOp)(napi_env env, Stmt *s, size_t argc, napi_value *argv);

/* Calls `op` with every argument of the call, however many parameters a statement takes. */
static napi_value with_params(napi_env env, napi_callback_info info, ParamsOp op) {
  size_t argc = 0;
  napi_value self;
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok) return NULL;
  napi_value small[16];
  napi_value *argv = argc <= 16 ? small : malloc(sizeof(napi_value) * argc);
  if (argv == NULL) return throw_coded(env, "ERR_MEMORY", "out of memory");
  size_t got = argc;
  napi_value result = NULL;
  if (napi_get_cb_info(env, info, &got, argv, NULL, NULL) == napi_ok) {
    Stmt *s = this_stmt(env, self);
    if (s != NULL) result = op(env, s, argc, argv);
  }
  if (argv != small) free(argv);
  return result;
}

static napi_value statement_all_with(napi_env env, Stmt *s, size_t argc, napi_value *argv) {
  napi_value rows;
  CHECK(napi_create_array(env, &rows));
  if (s->stmt == NULL) return rows;
  if (!bind_all(env, s, argc, argv, 0)) return NULL;
  Keys keys;
  if (!keys_make(env, s, &keys)) return NULL;
  uint32_t n = 0;
  int rc;
  s->db->callback_threw = 0;
  while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {
    napi_value row = row_of(env, s, &keys);
    if (row == NULL || napi_set_element(env, rows, n++, row) != napi_ok) {
      free(keys.names);
      sqlite3_reset(s->stmt);
      return NULL;
    }
  }
  free(keys.names);
  if (rc != SQLITE_DONE) return step_failed(env, s, rc);
  sqlite3_reset(s->stmt);
  return rows;
}

static napi_value statement_all(napi_env env, napi_callback_info info) {
  return with_params(env, info, statement_all_with);
}

static napi_value statement_get_with(napi_env env, Stmt *s, size_t argc, napi_value *argv) {
  napi_value result;
  napi_get_undefined(env, &result);
  if (s->stmt == NULL) return result;
  if (!bind_all(env, s, argc, argv, 0)) return NULL;
  s->db->callback_threw = 0;
  int rc = sqlite3_step(s->stmt);
  if (rc == SQLITE_ROW) {
    result = row_of(env, s, NULL);
    sqlite3_reset(s->stmt);
    return result;
  }
  if (rc != SQLITE_DONE) return step_failed(env, s, rc);
  sqlite3_reset(s->stmt);
  return result;
}

static napi_value statement_get(napi_env env, napi_callback_info info) {
  return with_params(env, info, statement_get_with);
}

static napi_value count_value(napi_env env, Stmt *s, sqlite3_int64 n) {
  napi_value value;
  if (s->read_big_ints) napi_create_bigint_int64(env, n, &value);
  else napi_create_int64(env, n, &value);
  return value;
}

static napi_value statement_run_with(napi_env env, Stmt *s, size_t argc, napi_value *argv) {
  napi_value result;
  CHECK(napi_create_object(env, &result));
  sqlite3_int64 changes = 0, rowid = 0;
  if (s->stmt != NULL) {
    if (!bind_all(env, s, argc, argv, 0)) return NULL;
    s->db->callback_threw = 0;
    int rc;
    while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return step_failed(env, s, rc);
    sqlite3_reset(s->stmt);
    changes = sqlite3_changes64(s->db->db);
    rowid = sqlite3_last_insert_rowid(s->db->db);
  }
  napi_set_named_property(env, result, "changes", count_value(env, s, changes));
  napi_set_named_property(env, result, "lastInsertRowid", count_value(env, s, rowid));
  return result;
}

static napi_value statement_run(napi_env env, napi_callback_info info) {
  return with_params(env, info, statement_run_with);
}

/* For iterate() (sqlite.ts): _bind(...params), then _step() until it answers undefined. */
static napi_value statement_bind_with(napi_env env, Stmt *s, size_t argc, napi_value *argv) {
  if (s->stmt == NULL) return NULL;
  bind_all(env, s, argc, argv, 0);
  return NULL;
}

static napi_value statement_bind(napi_env env, napi_callback_info info) {
  return with_params(env, info, statement_bind_with);
}

static napi_value statement_step(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Stmt *s = this_stmt(env, a.self);
  if (s == NULL) return NULL;
  napi_value result;
  napi_get_undefined(env, &result);
  if (s->stmt == NULL) return result;
  s->db->callback_threw = 0;
  int rc = sqlite3_step(s->stmt);
  if (rc == SQLITE_ROW) return row_of(env, s, NULL);
  if (rc != SQLITE_DONE) return step_failed(env, s, rc);
  sqlite3_reset(s->stmt);
  return result;
}

static napi_value statement_reset(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Stmt *s = NULL;
  if (napi_unwrap(env, a.self, (void **)&s) != napi_ok || s == NULL) return NULL;
  if (s->stmt != NULL) sqlite3_reset(s->stmt);
  return NULL;
}

static napi_value text_or_null(napi_env env, const char *text) {
  napi_value value;
  if (text == NULL) napi_get_null(env, &value);
  else napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
  return value;
}

static napi_value statement_columns(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Stmt *s = this_stmt(env, a.self);
  if (s == NULL) return NULL;
  napi_value columns;
  int count = s->stmt == NULL ? 0 : sqlite3_column_count(s->stmt);
  CHECK(napi_create_array_with_length(env, (size_t)count, &columns));
  for (int i = 0; i < count; i++) {
    napi_value column;
    CHECK(napi_create_object(env, &column));
    /* Only what sqlite.ts's ColumnInfo holds: node:sqlite's origin fields cost a lookup each. */
    napi_set_named_property(env, column, "name", text_or_null(env, sqlite3_column_name(s->stmt, i)));
    napi_set_named_property(env, column, "type", text_or_null(env, sqlite3_column_decltype(s->stmt, i)));
    napi_set_element(env, columns, (uint32_t)i, column);
  }
  return columns;
}

static napi_value statement_flag(napi_env env, napi_callback_info info, int which) {
  Args a;
  if (!get_args(env, info, &a)) return NULL;
  Stmt *s = this_stmt(env, a.self);
  if (s == NULL) return NULL;
  bool on = false;
  if (a.argc < 1 || napi_get_value_bool(env, a.argv[0], &on) != napi_ok) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "The \"enabled\" argument must be a boolean.");
  }
  if (which == 0) s->read_big_ints = on;
  else s->return_arrays = on;
  return NULL;
}

static napi_value statement_set_read_big_ints(napi_env env, napi_callback_info info) {
  return statement_flag(env, info, 0);
}

static napi_value statement_set_return_arrays(napi_env env, napi_callback_info info) {
  return statement_flag(env, info, 1);
}

/* ---- module -------------------------------------------------------------------------------- */

static void classes_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  Classes *classes = data;
  napi_delete_reference(env, classes->statement);
  napi_delete_reference(env, classes->session);
  free(classes);
}

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL}
#define GETTER(name, fn) {name, NULL, NULL, fn, NULL, NULL, napi_default_jsproperty, NULL}

NAPI_MODULE_INIT() {
  napi_property_descriptor database[] = {
      METHOD("prepare", database_prepare),
      METHOD("exec", database_exec),
      METHOD("close", database_close),
      METHOD("createSession", database_create_session),
      METHOD("applyChangeset", database_apply_changeset),
      METHOD("setAuthorizer", database_set_authorizer),
      METHOD("limitLength", database_limit_length),
      METHOD("enableLoadExtension", database_enable_load_extension),
      METHOD("loadExtension", database_load_extension),
      GETTER("isOpen", database_is_open),
      GETTER("isTransaction", database_is_transaction),
  };
  napi_property_descriptor statement[] = {
      METHOD("run", statement_run),
      METHOD("get", statement_get),
      METHOD("all", statement_all),
      METHOD("columns", statement_columns),
      METHOD("setReadBigInts", statement_set_read_big_ints),
      METHOD("setReturnArrays", statement_set_return_arrays),
      METHOD("_bind", statement_bind),
      METHOD("_step", statement_step),
      METHOD("_reset", statement_reset),
  };
  napi_property_descriptor session[] = {
      METHOD("changeset", session_changeset),
      METHOD("close", session_close),
  };
  napi_value database_class, statement_class, session_class, version;
  CHECK(napi_define_class(env, "Database", NAPI_AUTO_LENGTH, database_new, NULL, sizeof database / sizeof database[0], database, &database_class));
  CHECK(napi_define_class(env, "Statement", NAPI_AUTO_LENGTH, internal_new, NULL, sizeof statement / sizeof statement[0], statement, &statement_class));
  CHECK(napi_define_class(env, "Session", NAPI_AUTO_LENGTH, internal_new, NULL, sizeof session / sizeof session[0], session, &session_class));
  Classes *classes = calloc(1, sizeof(Classes));
  if (classes == NULL) return NULL;
  CHECK(napi_create_reference(env, statement_class, 1, &classes->statement));
  CHECK(napi_create_reference(env, session_class, 1, &classes->session));
  CHECK(napi_set_instance_data(env, classes, classes_finalize, NULL));
  CHECK(napi_set_named_property(env, exports, "Database", database_class));
  CHECK(napi_set_named_property(env, exports, "Statement", statement_class));
  CHECK(napi_set_named_property(env, exports, "Session", session_class));
  CHECK(napi_create_string_utf8(env, sqlite3_libversion(), NAPI_AUTO_LENGTH, &version));
  CHECK(napi_set_named_property(env, exports, "sqliteVersion", version));
  return exports;
}
