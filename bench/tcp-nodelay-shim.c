// LD_PRELOAD shim for the benchmark server: sets TCP_NODELAY on every socket
// returned by accept()/accept4(). s3s-fs (hyper) never sets it, so a small
// response written in two pieces (headers, then body) waits for the client's
// delayed ACK (~40 ms on Linux) under Nagle's algorithm, which would make every
// client's small GET look like 40 ms. Built by bench/run.mjs at run time:
//   gcc -O2 -shared -fPIC -o tcp-nodelay-shim.so tcp-nodelay-shim.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
  if (fd < 0) return;
  int one = 1;
  // Fails harmlessly (ENOTSOCK/EOPNOTSUPP) on Unix sockets: ignore the result.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  int s = real(fd, addr, len);
  nodelay(s);
  return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int s = real(fd, addr, len, flags);
  nodelay(s);
  return s;
}
