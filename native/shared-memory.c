// A few bytes of memory that separate processes share: a file mapped with MAP_SHARED, returned
// to JavaScript as an ArrayBuffer. A node's HTTP workers (src/node/http-workers.ts) read what its
// main process publishes there (the applied LSN, the epoch, the schema generation) without a
// message per change. Node has no mmap of its own.
//
//   map(path, bytes) -> ArrayBuffer   the first `bytes` of the file, created (mode 0600) or
//                                     grown to that size; unmapped when the buffer is collected.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_BYTES_MAX 4096
#define MAP_BYTES_MAX (1 << 20)

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value fail(napi_env env, const char *what, const char *path) {
  char message[PATH_BYTES_MAX + 128];
  snprintf(message, sizeof message, "%s %s: %s", what, path, strerror(errno));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  char path[PATH_BYTES_MAX];
  size_t length = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok || length >= sizeof path - 1) {
    napi_throw_type_error(env, NULL, "map(path, bytes): path must be a string shorter than 4 KiB");
    return NULL;
  }
  int64_t bytes = 0;
  if (napi_get_value_int64(env, argv[1], &bytes) != napi_ok || bytes <= 0 || bytes > MAP_BYTES_MAX) {
    napi_throw_range_error(env, NULL, "map(path, bytes): bytes must be between 1 and 1 MiB");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(env, "cannot open", path);
  struct stat status;
  if (fstat(fd, &status) != 0 || (status.st_size < bytes && ftruncate(fd, bytes) != 0)) {
    int saved = errno;
    close(fd);
    errno = saved;
    return fail(env, "cannot size", path);
  }
  void *memory = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int saved = errno;
  close(fd);
  errno = saved;
  if (memory == MAP_FAILED) return fail(env, "cannot map", path);
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, memory, (size_t)bytes, unmap, (void *)(uintptr_t)bytes, &buffer) != napi_ok) {
    munmap(memory, (size_t)bytes);
    napi_throw_error(env, NULL, "map(): this Node.js does not allow external ArrayBuffers");
    return NULL;
  }
  return buffer;
}

NAPI_MODULE_INIT() {
  napi_value map;
  if (napi_create_function(env, "map", NAPI_AUTO_LENGTH, map_file, NULL, &map) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "map", map) != napi_ok) return NULL;
  return exports;
}
