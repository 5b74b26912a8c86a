/* The libmicrohttpd peer of `hijack conform`: the conformance endpoints of
 * SPEC.md#conformance-endpoints on GNU libmicrohttpd (Debian's libmicrohttpd-dev), handing over
 * with MHD_create_response_for_upgrade.
 *
 *   peer-libmicrohttpd [ADDR]   (default 127.0.0.1:0; a bare port means 127.0.0.1:PORT)
 *
 * Prints "listening on http://127.0.0.1:PORT" on stdout once it accepts connections.
 *
 * - One thread per connection (MHD_USE_THREAD_PER_CONNECTION), upgrades allowed
 *   (MHD_ALLOW_UPGRADE), every other option at its default.
 * - Every request is answered once its whole body has been delivered to the access handler
 *   (the final call, with *upload_data_size 0), as MHD's examples do.
 * - /echo: a 101 from MHD_create_response_for_upgrade with Upgrade: echo (MHD adds Connection:
 *   Upgrade); the upgrade handler gets the bytes MHD read past the request (extra_in) and the
 *   socket, and a thread echoes extra_in, then the socket, until the client half-closes.
 * - /close-notify/{id}: MHD has no close-notify signal; the access handler is called again
 *   while no response is queued, so it waits (1 ms at a time) for timeout_ms, and a completion
 *   callback (MHD_OPTION_NOTIFY_COMPLETED) with any termination code but COMPLETED_OK before
 *   then (MHD_REQUEST_TERMINATED_CLIENT_ABORT, _READ_ERROR, ...) is "fired".
 * - /hold keeps the upgrade's socket, handle and extra_in; /release closes them.
 * - /stats: glibc's mallinfo2() bytes in use (live heap; there is no collector) and MHD's
 *   current connection count.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What /close-notify/{id} recorded. */
struct event {
  char *id;
  const char *state; /* "pending", "fired", "timeout" */
  long long after_ms;
  struct event *next;
};
static struct event *events;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every part a /hold upgrade handed over. */
struct held {
  struct MHD_UpgradeResponseHandle *urh;
  MHD_socket sock;
  char *extra;
  struct held *next;
};
static struct held *holds;
static pthread_mutex_t holds_lock = PTHREAD_MUTEX_INITIALIZER;

static struct MHD_Daemon *daemon_;

/* Per request: its kind and, for /close-notify, its id and deadline. */
enum kind { OTHER, ECHO, HOLD, CLOSE_NOTIFY };
struct request {
  enum kind kind;
  int body_failed;
  char *id;
  long long started_ms, timeout_ms;
  int answered; /* a response was queued */
  int started;  /* the access handler has seen the head */
  char *target; /* the request-target as sent (MHD_OPTION_URI_LOG_CALLBACK) */
};

/* Called once per request, before the head is parsed, with the target as sent: the request's
 * state, which MHD passes to the access handler as *con_cls. */
static void *log_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)cls;
  (void)c;
  struct request *rq = calloc(1, sizeof *rq);
  rq->target = strdup(uri);
  return rq;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void record(const char *id, const char *state, long long after_ms) {
  pthread_mutex_lock(&events_lock);
  struct event *e = events;
  while (e != NULL && strcmp(e->id, id) != 0)
    e = e->next;
  if (e == NULL) {
    e = calloc(1, sizeof *e);
    e->id = strdup(id);
    e->next = events;
    events = e;
  }
  e->state = state;
  e->after_ms = after_ms;
  pthread_mutex_unlock(&events_lock);
}

/* Whether the comma-separated header `name` holds `token`, in any case. */
static int has_token(struct MHD_Connection *c, const char *name, const char *token) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  if (v == NULL)
    return 0;
  size_t n = strlen(token);
  while (*v != '\0') {
    while (*v == ' ' || *v == '\t' || *v == ',')
      v++;
    const char *end = v;
    while (*end != '\0' && *end != ',')
      end++;
    const char *last = end;
    while (last > v && (last[-1] == ' ' || last[-1] == '\t'))
      last--;
    if ((size_t)(last - v) == n && strncasecmp(v, token, n) == 0)
      return 1;
    v = end;
  }
  return 0;
}

static int wants_upgrade(struct MHD_Connection *c, const char *protocol) {
  return has_token(c, MHD_HTTP_HEADER_CONNECTION, "upgrade") &&
         has_token(c, MHD_HTTP_HEADER_UPGRADE, protocol);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status, const char *type,
                              const char *body, int close) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (close)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned int status, const char *body) {
  return answer(c, status, "text/plain; charset=utf-8", body, 0);
}

struct echo_job {
  MHD_socket sock;
  struct MHD_UpgradeResponseHandle *urh;
  char *extra;
  size_t extra_size;
};

static int send_all(MHD_socket s, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(s, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void *echo_thread(void *arg) {
  struct echo_job *job = arg;
  /* MHD hands the socket over non-blocking; this thread blocks. */
  int flags = fcntl(job->sock, F_GETFL);
  fcntl(job->sock, F_SETFL, flags & ~O_NONBLOCK);
  /* The bytes MHD had read past the request come first. */
  if (send_all(job->sock, job->extra, job->extra_size) == 0) {
    char buf[16384];
    for (;;) {
      ssize_t n = recv(job->sock, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) /* 0: the client half-closed */
        break;
      if (send_all(job->sock, buf, (size_t)n) != 0)
        break;
    }
  }
  MHD_upgrade_action(job->urh, MHD_UPGRADE_ACTION_CLOSE);
  free(job->extra);
  free(job);
  return NULL;
}

static void upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
                     size_t extra_in_size, MHD_socket sock,
                     struct MHD_UpgradeResponseHandle *urh) {
  (void)c;
  (void)con_cls;
  char *extra = malloc(extra_in_size + 1);
  memcpy(extra, extra_in, extra_in_size);
  if (cls != NULL) { /* /hold */
    struct held *h = calloc(1, sizeof *h);
    h->urh = urh;
    h->sock = sock;
    h->extra = extra;
    pthread_mutex_lock(&holds_lock);
    h->next = holds;
    holds = h;
    pthread_mutex_unlock(&holds_lock);
    return;
  }
  struct echo_job *job = calloc(1, sizeof *job);
  job->sock = sock;
  job->urh = urh;
  job->extra = extra;
  job->extra_size = extra_in_size;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, echo_thread, job);
  pthread_attr_destroy(&attr);
}

static enum MHD_Result upgrade(struct MHD_Connection *c, const char *protocol, int hold) {
  struct MHD_Response *r = MHD_create_response_for_upgrade(upgraded, hold ? (void *)1 : NULL);
  MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, protocol);
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
  (void)cls;
  (void)version;
  (void)upload_data;
  struct request *rq = *con_cls;
  if (!rq->started) {
    /* First call: the head only. */
    rq->started = 1;
    if (strcmp(url, "/echo") == 0)
      rq->kind = ECHO;
    else if (strcmp(url, "/hold") == 0)
      rq->kind = HOLD;
    else if (strcmp(url, "/close-notify") == 0 || strncmp(url, "/close-notify/", 14) == 0) {
      rq->kind = CLOSE_NOTIFY;
      rq->id = strdup(url[13] == '/' ? url + 14 : "");
      const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout_ms");
      rq->timeout_ms = 5000;
      if (t != NULL && *t != '\0') {
        char *end;
        long long v = strtoll(t, &end, 10);
        if (*end == '\0' && v >= 0)
          rq->timeout_ms = v;
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    /* Body bytes: read and dropped. */
    *upload_data_size = 0;
    return MHD_YES;
  }
  /* The whole body has been delivered. */
  switch (rq->kind) {
  case ECHO:
    if (!wants_upgrade(c, "echo"))
      return text(c, 426, "send Connection: Upgrade and Upgrade: echo\n");
    return upgrade(c, "echo", 0);
  case HOLD:
    if (strcmp(method, "GET") != 0 || !wants_upgrade(c, "hold"))
      return text(c, 426, "send GET with Connection: Upgrade and Upgrade: hold\n");
    return upgrade(c, "hold", 1);
  case CLOSE_NOTIFY:
    if (rq->started_ms == 0) {
      rq->started_ms = now_ms();
      record(rq->id, "pending", -1);
    }
    if (now_ms() - rq->started_ms < rq->timeout_ms) {
      /* No response yet: MHD calls again; meanwhile it sees the client go away. */
      usleep(1000);
      return MHD_YES;
    }
    record(rq->id, "timeout", now_ms() - rq->started_ms);
    rq->answered = 1;
    return text(c, 200, "still here\n");
  case OTHER:
    break;
  }
  if (strncmp(url, "/events/", 8) == 0) {
    const char *id = url + 8;
    char body[1024];
    body[0] = '\0';
    pthread_mutex_lock(&events_lock);
    for (struct event *e = events; e != NULL; e = e->next) {
      if (strcmp(e->id, id) == 0) {
        char after[32];
        if (e->after_ms < 0)
          strcpy(after, "null");
        else
          snprintf(after, sizeof after, "%lld", e->after_ms);
        snprintf(body, sizeof body, "{\"id\": \"%s\", \"close_notify\": \"%s\", \"after_ms\": %s}\n",
                 e->id, e->state, after);
        break;
      }
    }
    pthread_mutex_unlock(&events_lock);
    if (body[0] == '\0')
      return text(c, 404, "no such close-notify request\n");
    return answer(c, 200, "application/json", body, 0);
  }
  if (strcmp(url, "/release") == 0) {
    pthread_mutex_lock(&holds_lock);
    struct held *h = holds;
    holds = NULL;
    pthread_mutex_unlock(&holds_lock);
    int n = 0;
    while (h != NULL) {
      struct held *next = h->next;
      MHD_upgrade_action(h->urh, MHD_UPGRADE_ACTION_CLOSE);
      free(h->extra);
      free(h);
      h = next;
      n++;
    }
    char body[64];
    snprintf(body, sizeof body, "{\"released\": %d}\n", n);
    return answer(c, 200, "application/json", body, 0);
  }
  if (strcmp(url, "/stats") == 0) {
    struct mallinfo2 m = mallinfo2();
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    char body[128];
    snprintf(body, sizeof body, "{\"live_heap_bytes\": %zu, \"connections\": %u}\n", m.uordblks,
             info != NULL ? info->num_connections : 0);
    return answer(c, 200, "application/json", body, 0);
  }
  /* Any other path. The body names the request it answers (SPEC.md#conformance-endpoints). */
  char body[8192];
  snprintf(body, sizeof body, "%s %s: hijack conformance peer (libmicrohttpd %s)\n", method,
           rq->target, MHD_get_version());
  return text(c, 200, body);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  struct request *rq = *con_cls;
  if (rq == NULL)
    return;
  if (rq->kind == CLOSE_NOTIFY && rq->started_ms != 0 && !rq->answered &&
      toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
    record(rq->id, "fired", now_ms() - rq->started_ms);
  free(rq->id);
  free(rq->target);
  free(rq);
  *con_cls = NULL;
}

int main(int argc, char **argv) {
  const char *arg = argc > 1 ? argv[1] : "127.0.0.1:0";
  char host[256] = "127.0.0.1";
  const char *port = arg;
  const char *colon = strrchr(arg, ':');
  if (colon != NULL) {
    snprintf(host, sizeof host, "%.*s", (int)(colon - arg), arg);
    port = colon + 1;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "peer-libmicrohttpd: bad address %s\n", arg);
    return 2;
  }
  daemon_ = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                 MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
                             0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_URI_LOG_CALLBACK, log_uri, NULL, MHD_OPTION_END);
  if (daemon_ == NULL) {
    fprintf(stderr, "peer-libmicrohttpd: cannot listen on %s\n", arg);
    return 1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  printf("listening on http://%s:%u\n", host, (unsigned)info->port);
  fflush(stdout);
  for (;;)
    pause();
}
