#include "cmd_admin.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "tg_buf.h"

#define ADMIN_DEFAULT_CONFIG "/etc/transgate/transgate.json"
#define ADMIN_REPLY_MAX      (1u << 20)
#define ADMIN_TIMEOUT_S      15     /* the gateway waits up to 2 s for the trail */

static const char usage_admin[] =
    "usage: transgate admin suspend|resume UPSTREAM|--all [-c FILE | -s SOCKET] [--json]\n"
    "       transgate admin status [UPSTREAM] [-c FILE | -s SOCKET] [--json]\n"
    "\n"
    "The suspend switch of the running gateway, through its admin socket (the\n"
    "configuration's \"admin\": {\"socket\": PATH}).  A change takes effect at once\n"
    "for new requests on every worker; requests already sent to a vendor finish.\n"
    "While an upstream is suspended its terminals get 503 \"upstream_suspended\"\n"
    "and nothing is sent to it.  Each change is recorded in the audit trail with\n"
    "the uid and pid of the process that asked.\n"
    "\n"
    "  suspend UPSTREAM   stop forwarding to UPSTREAM\n"
    "  suspend --all      stop all forwarding\n"
    "  resume UPSTREAM    forward to UPSTREAM again\n"
    "  resume --all       lift the --all suspension (upstreams suspended on their\n"
    "                     own stay suspended)\n"
    "  status [UPSTREAM]  what is suspended, since when, by whom\n"
    "\n"
    "  -c, --config FILE  read the socket's path from FILE\n"
    "                     (default " ADMIN_DEFAULT_CONFIG ")\n"
    "  -s, --socket PATH  the admin socket itself\n"
    "      --json         print the gateway's answer as JSON\n"
    "  -h, --help         this help\n"
    "\n"
    "A suspension made here lasts until it is resumed or the gateway restarts.\n"
    "To keep an upstream suspended across restarts, also set \"suspended\": true\n"
    "on it in the configuration; that one only a reload lifts.\n"
    "\n"
    "Exit status: 0 done (and recorded in the audit trail); 1 not done: the\n"
    "gateway refused (unknown upstream, suspended by the configuration, audit\n"
    "trail unavailable) or could not be reached; 2 usage or configuration\n"
    "error; 3 done, but the audit trail has not recorded it (yet).\n";

/* The admin socket named in the configuration file, resolved against the
 * file's directory as the gateway resolves it.  Only that key is read, so
 * a configuration being edited elsewhere does not stand in the way of a
 * suspension.  Returns a new string, or NULL after saying why. */
static char *socket_from_config(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *sock;
    const char *s, *slash;
    tg_buf out;

    if (root == NULL) {
        fprintf(stderr, "transgate admin: %s:%d:%d: %s\n", path, jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    sock = json_object_get(json_object_get(root, "admin"), "socket");
    s = json_string_value(sock);
    if (s == NULL || s[0] == '\0') {
        fprintf(stderr, "transgate admin: %s: no \"admin\": {\"socket\": PATH}: "
                "the gateway has no admin plane to talk to\n", path);
        json_decref(root);
        return NULL;
    }
    tg_buf_init(&out, 4096);
    slash = strrchr(path, '/');
    if (s[0] != '/' && slash != NULL) {
        tg_buf_add(&out, path, (size_t)(slash - path) + 1);
    }
    tg_buf_adds(&out, s);
    json_decref(root);
    if (out.data == NULL)
        fprintf(stderr, "transgate admin: %s: socket path too long\n", path);
    return tg_buf_steal(&out, NULL);
}

/* Send one request on the admin socket and read the answer.  Returns the
 * HTTP status with *body (new reference) the JSON answer, or -1 after
 * saying why. */
static int admin_call(const char *sock, const char *method, const char *url,
                      json_t **body)
{
    struct sockaddr_un sa;
    struct timeval tv = { ADMIN_TIMEOUT_S, 0 };
    char req[512], chunk[4096];
    const char *head_end;
    json_error_t jerr;
    tg_buf in;
    int fd = -1, status = -1, n;

    *body = NULL;
    tg_buf_init(&in, ADMIN_REPLY_MAX);
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "transgate admin: %s: socket path too long\n", sock);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        fprintf(stderr, "transgate admin: cannot connect to the admin socket %s: "
                "%s%s\n", sock, strerror(e),
                e == ENOENT ? " (is the gateway running, with \"admin\": "
                              "{\"socket\": ...} in its configuration?)"
                : e == EACCES || e == EPERM ? " (the socket is mode 0600: run "
                              "as root or as the gateway's account)"
                : e == ECONNREFUSED ? " (nothing listens on it: the gateway is "
                              "not running)" : "");
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: admin\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n", method, url);
    if (n < 0 || (size_t)n >= sizeof(req) ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "transgate admin: %s: cannot send the request: %s\n",
                sock, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "transgate admin: %s: no answer: %s\n", sock,
                    strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        if (tg_buf_add(&in, chunk, (size_t)r) != 0) {
            fprintf(stderr, "transgate admin: %s: answer too long\n", sock);
            goto out;
        }
    }
    head_end = in.data != NULL ? strstr(in.data, "\r\n\r\n") : NULL;
    if (head_end == NULL || sscanf(in.data, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "transgate admin: %s: not an answer from the gateway's "
                "admin plane\n", sock);
        status = -1;
        goto out;
    }
    *body = json_loads(head_end + 4, 0, &jerr);
    if (*body == NULL) {
        fprintf(stderr, "transgate admin: %s: the answer (status %d) is not "
                "JSON (an older gateway without the suspend switch?)\n", sock,
                status);
        status = -1;
    }
out:
    if (fd >= 0)
        close(fd);
    tg_buf_free(&in);
    return status;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "?";
}

/* "suspended (at run time by uid 0, pid 12, since ...)" */
static void print_state(const char *what, const json_t *o)
{
    int rt = json_is_true(json_object_get(o, "runtime"));
    int cf = json_is_true(json_object_get(o, "configuration"));
    const json_t *uid = json_object_get(o, "peer_uid");

    printf("%s: %s", what, str(o, "state"));
    if (strcmp(str(o, "state"), "suspended") == 0) {
        printf(" (");
        if (cf)
            printf("by the configuration%s", rt ? ", and " : "");
        if (rt || !cf)
            printf("at run time");
        if (json_is_integer(uid))
            printf(" by uid %lld, pid %lld", (long long)json_integer_value(uid),
                   (long long)json_integer_value(json_object_get(o, "peer_pid")));
        printf(", since %s)", str(o, "since"));
    }
    printf("\n");
}

static int status_cmd(const char *sock, const char *upstream, int as_json)
{
    char url[128];
    json_t *body = NULL, *u;
    size_t i;
    int st;

    if (upstream != NULL)
        snprintf(url, sizeof(url), "/upstreams/%s", upstream);
    st = admin_call(sock, "GET", upstream != NULL ? url : "/upstreams", &body);
    if (st < 0)
        return ADMIN_EXIT_FAILED;
    if (st != 200) {
        fprintf(stderr, "transgate admin: %s\n", str(body, "message"));
        json_decref(body);
        return ADMIN_EXIT_FAILED;
    }
    if (as_json) {
        json_dumpf(body, stdout, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        printf("\n");
    } else if (upstream != NULL) {
        char what[128];
        snprintf(what, sizeof(what), "upstream %s", upstream);
        print_state(what, body);
    } else {
        print_state("forwarding", json_object_get(body, "forwarding"));
        json_array_foreach(json_object_get(body, "upstreams"), i, u) {
            char what[128];
            snprintf(what, sizeof(what), "upstream %s", str(u, "name"));
            print_state(what, u);
        }
    }
    json_decref(body);
    return ADMIN_EXIT_OK;
}

static int change_cmd(const char *sock, const char *upstream, int suspend,
                      int as_json)
{
    char url[128], what[96];
    const char *audit;
    json_t *body = NULL;
    int st, rc = ADMIN_EXIT_OK;

    if (upstream != NULL) {
        snprintf(url, sizeof(url), "/upstreams/%s/%s", upstream,
                 suspend ? "suspend" : "resume");
        snprintf(what, sizeof(what), "upstream %s", upstream);
    } else {
        snprintf(url, sizeof(url), "/forwarding/%s", suspend ? "suspend" : "resume");
        snprintf(what, sizeof(what), "all forwarding");
    }
    st = admin_call(sock, "POST", url, &body);
    if (st < 0)
        return ADMIN_EXIT_FAILED;
    if (as_json) {
        json_dumpf(body, stdout, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        printf("\n");
    }
    if (st != 200 && st != 409) {
        fprintf(stderr, "transgate admin: %s: %s\n", what, str(body, "message"));
        json_decref(body);
        return ADMIN_EXIT_FAILED;
    }
    if (st == 409) {
        /* A resume the configuration overrides: still suspended. */
        fprintf(stderr, "transgate admin: %s: %s\n", what, str(body, "message"));
        rc = ADMIN_EXIT_FAILED;
    } else if (!as_json) {
        int changed = json_is_true(json_object_get(body, "changed"));
        if (changed)
            printf("%s %s\n", what, suspend ? "suspended" : "resumed");
        else
            printf("%s %s\n", what, suspend ? "was already suspended"
                                            : "was not suspended at run time");
    }
    audit = str(body, "audit");
    if (strcmp(audit, "queued") == 0) {
        fprintf(stderr, "transgate admin: warning: the audit trail has not "
                "written this yet (it cannot write at the moment); the gateway "
                "records it when it can%s\n", suspend ? "; the suspension is in effect" : "");
        if (rc == ADMIN_EXIT_OK)
            rc = ADMIN_EXIT_UNRECORDED;
    } else if (strcmp(audit, "recorded") != 0) {
        fprintf(stderr, "transgate admin: warning: NOT recorded in the audit "
                "trail (its queue is full: a records_lost event will count it)%s\n",
                suspend ? "; the suspension is in effect" : "");
        if (rc == ADMIN_EXIT_OK)
            rc = ADMIN_EXIT_UNRECORDED;
    }
    if (suspend && rc != ADMIN_EXIT_FAILED && !as_json)
        fprintf(stderr, "note: this lasts until it is resumed or the gateway "
                "restarts; to keep it across restarts also set \"suspended\": "
                "true on %s in the configuration\n",
                upstream != NULL ? "the upstream" : "every upstream");
    json_decref(body);
    return rc;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TG_NAME_MAX)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") == n;
}

int cmd_admin(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "socket", required_argument, NULL, 's' },
        { "all", no_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *sockarg = NULL, *action, *upstream = NULL;
    char *sock = NULL;
    int all = 0, as_json = 0, ch, rc;

    optind = 1;
    /* Options may follow the action and the upstream. */
    while ((ch = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 's':
            sockarg = optarg;
            break;
        case 'a':
            all = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            fputs(usage_admin, stdout);
            return ADMIN_EXIT_OK;
        default:
            fputs(usage_admin, stderr);
            return ADMIN_EXIT_USAGE;
        }
    }
    if (optind >= argc || argc - optind > 2 || (config != NULL && sockarg != NULL)) {
        fputs(usage_admin, stderr);
        return ADMIN_EXIT_USAGE;
    }
    action = argv[optind];
    if (argc - optind == 2)
        upstream = argv[optind + 1];
    if (strcmp(action, "status") == 0) {
        if (all) {
            fputs(usage_admin, stderr);
            return ADMIN_EXIT_USAGE;
        }
    } else if (strcmp(action, "suspend") == 0 || strcmp(action, "resume") == 0) {
        if ((upstream == NULL) == !all) {
            fprintf(stderr, "transgate admin %s: name one UPSTREAM, or --all\n\n%s",
                    action, usage_admin);
            return ADMIN_EXIT_USAGE;
        }
    } else {
        fprintf(stderr, "transgate admin: unknown action '%s'\n\n%s", action,
                usage_admin);
        return ADMIN_EXIT_USAGE;
    }
    if (upstream != NULL && !valid_name(upstream)) {
        fprintf(stderr, "transgate admin: '%s' is not an upstream name (1 to %d "
                "of A-Z a-z 0-9 . _ -)\n", upstream, TG_NAME_MAX);
        return ADMIN_EXIT_USAGE;
    }
    if (sockarg != NULL)
        sock = strdup(sockarg);
    else
        sock = socket_from_config(config != NULL ? config : ADMIN_DEFAULT_CONFIG);
    if (sock == NULL)
        return ADMIN_EXIT_USAGE;
    if (strcmp(action, "status") == 0)
        rc = status_cmd(sock, upstream, as_json);
    else
        rc = change_cmd(sock, upstream, strcmp(action, "suspend") == 0, as_json);
    free(sock);
    return rc;
}
