/*
 * transgate: command-line entry point.  Everything lives in the libraries;
 * this file only dispatches subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "cmd_admin.h"
#include "cmd_policy.h"
#include "config.h"
#include "log.h"
#include "runtime.h"
#include "server.h"

static const char usage_main[] =
    "usage: transgate <command> [options]\n"
    "\n"
    "A secure translation gateway: terminals speak the DeepL API v2 to it over\n"
    "TLS; it masks personal data, refuses classified material and forwards to\n"
    "the configured translation service over TLS.\n"
    "\n"
    "commands:\n"
    "  serve -c FILE          run the gateway\n"
    "  check -c FILE          validate the configuration, keys and certificates;\n"
    "                         print the effective listeners, upstreams and TLS suites\n"
    "  key new CLIENT -c FILE issue an API key for CLIENT (printed once; only its\n"
    "                         hash is stored, in the client's api_key_hashes file)\n"
    "  policy test ...        show what the policy would mask or refuse in a text\n"
    "  audit verify|mac|keygen  check the audit trail's chain, compute a text's\n"
    "                         digest, or create an audit key\n"
    "  admin suspend|resume|status [UPSTREAM|--all]\n"
    "                         suspend or resume forwarding on the running gateway\n"
    "                         (its admin socket), or show what is suspended\n"
    "  version                print versions of transgate and its libraries\n"
    "\n"
    "Run 'transgate <command> --help' for the options of a command.\n";

static const char usage_serve[] =
    "usage: transgate serve -c FILE\n"
    "\n"
    "Load and validate FILE, then serve until SIGTERM or SIGINT, which stop\n"
    "accepting, let requests in flight finish (limits.drain_timeout_ms) and exit 0.\n"
    "Diagnostics go to stderr or syslog (log.syslog) and never contain request text.\n"
    "\n"
    "  -c, --config FILE   configuration file (see docs/config.md)\n"
    "  -h, --help          this help\n";

static const char usage_check[] =
    "usage: transgate check -c FILE\n"
    "\n"
    "Validate FILE and everything it references (certificates, private keys and\n"
    "their permissions, client key hashes, vendor keys, TLS profiles, vendor host\n"
    "names) without serving.  Prints the effective configuration and exits 0, or\n"
    "prints one line per problem and exits 1.\n"
    "\n"
    "  -c, --config FILE   configuration file\n"
    "  -h, --help          this help\n";

static const char usage_key[] =
    "usage: transgate key new CLIENT -c FILE\n"
    "\n"
    "Create a new API key for the client named CLIENT in FILE.  The key is\n"
    "printed once on stdout; only its SHA-256 hash is appended to the client's\n"
    "api_key_hashes file (created with mode 0600 if absent).  Terminals send it\n"
    "as 'Authorization: DeepL-Auth-Key <key>'.  The running gateway reads the\n"
    "hashes at start.\n"
    "\n"
    "  -c, --config FILE   configuration file\n"
    "  -h, --help          this help\n";

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

/* Parse "-c FILE" (and --help).  Returns the config path or NULL. */
static const char *parse_config_opt(int argc, char **argv, const char *usage,
                                    int *exit_code)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            *exit_code = 0;
            return NULL;
        default:
            fputs(usage, stderr);
            *exit_code = 2;
            return NULL;
        }
    }
    if (path == NULL || optind != argc) {
        fputs(usage, stderr);
        *exit_code = 2;
        return NULL;
    }
    return path;
}

static int cmd_serve(int argc, char **argv)
{
    int code = 2;
    const char *path = parse_config_opt(argc, argv, usage_serve, &code);

    if (path == NULL)
        return code;
    return server_run(path);
}

static int cmd_check(int argc, char **argv)
{
    int code = 2;
    const char *path = parse_config_opt(argc, argv, usage_check, &code);
    tg_config *cfg;
    tg_runtime *rt;
    int ok = 1;

    if (path == NULL)
        return code;
    log_init(TG_LOG_WARN, 0);
    cfg = config_load(path, stderr);
    if (cfg == NULL)
        return 1;
    config_print(cfg, stdout);
    rt = runtime_load(cfg, stderr);
    if (rt == NULL)
        return 1;
    runtime_print(rt, stdout);
    if (rt->cfg->audit_path == NULL) {
        fprintf(stderr, "%s: no \"audit\" section: serve refuses to start without "
                "an audit trail\n", path);
        ok = 0;
    } else {
        audit_conf ac;
        server_audit_conf(rt->cfg, &ac);
        if (audit_check(&ac, stderr) != 0)
            ok = 0;
    }
    if (!ok) {
        runtime_free(rt);
        return 1;
    }
    printf("configuration OK\n");
    runtime_free(rt);
    return 0;
}

static int cmd_key(int argc, char **argv)
{
    const char *client;
    tg_config *cfg;
    const tg_client_conf *cc = NULL;
    char key[48], hash[72], err[512];
    int code = 2;
    const char *path;

    if (want_help(argc, argv)) {
        fputs(usage_key, stdout);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "new") != 0) {
        fputs(usage_key, stderr);
        return 2;
    }
    client = argv[2];
    path = parse_config_opt(argc - 2, argv + 2, usage_key, &code);
    if (path == NULL)
        return code;
    /* The first key of a client creates its hashes file. */
    cfg = config_load_opts(path, CONFIG_ALLOW_MISSING_KEY_HASHES, stderr);
    if (cfg == NULL)
        return 1;
    for (size_t i = 0; i < cfg->n_clients; i++)
        if (strcmp(cfg->clients[i].name, client) == 0)
            cc = &cfg->clients[i];
    if (cc == NULL) {
        fprintf(stderr, "%s: no client named %s\n", path, client);
        config_free(cfg);
        return 1;
    }
    if (auth_key_new(key, hash) != 0) {
        fprintf(stderr, "cannot generate a key: random number generator failed\n");
        config_free(cfg);
        return 1;
    }
    if (auth_append_hash(cc->api_key_hashes, hash, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        OPENSSL_cleanse(key, sizeof(key));
        config_free(cfg);
        return 1;
    }
    printf("%s\n", key);
    fflush(stdout);
    OPENSSL_cleanse(key, sizeof(key));
    fprintf(stderr, "key for %s stored as a hash in %s; restart the gateway to use it\n",
            client, cc->api_key_hashes);
    config_free(cfg);
    return 0;
}

static int cmd_version(void)
{
    char pcre[64];

    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    printf("transgate %s\n", TG_VERSION);
    printf("  OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("  libmicrohttpd %s\n", MHD_get_version());
    printf("  PCRE2 %s\n", pcre);
    printf("  Jansson %s\n", jansson_version_str());
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    /* Jansson's copies of request and reply text are wiped when freed;
     * must precede any JSON use and every thread. */
    api_json_wipe_on_free();
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0)
        return cmd_key(argc - 1, argv + 1);
    if (strcmp(cmd, "policy") == 0)
        return cmd_policy(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0)
        return cmd_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (want_help(argc - 1, argv + 1)) {
            printf("usage: transgate version\n\nPrint the versions of transgate and its libraries.\n");
            return 0;
        }
        return cmd_version();
    }
    fprintf(stderr, "transgate: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
