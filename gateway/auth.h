/*
 * auth: terminal API keys issued by the gateway.
 *
 * Keys are random 32-byte values shown once as "tg_" + 43 base64url
 * characters; the gateway stores only "sha256:<hex>" of the full key string,
 * in a per-client hashes file (a secret file).  Keys have 256 bits of entropy,
 * so a fast hash is adequate; comparison is constant-time.
 */
#ifndef TG_AUTH_H
#define TG_AUTH_H

#include <stddef.h>

#include "config.h"

typedef struct auth_table auth_table;

/* Load every client's hashes file.  Returns a new table or NULL, having
 * written one line per problem (file and reason, never contents) to errs. */
auth_table *auth_load(const tg_config *cfg, FILE *errs);

/* NULL-safe.  Wipes the hashes. */
void auth_free(auth_table *t);

/* Find the client whose key this is.  key is the value after
 * "DeepL-Auth-Key ".  Returns the client's index in cfg->clients, or -1 for
 * an unknown key or a disabled client (*disabled set to 1 in that case). */
int auth_lookup(const auth_table *t, const char *key, size_t keylen,
                int *disabled);

/* Make a new key: writes the printable key (NUL-terminated, 47 bytes incl.
 * NUL) into key_out and its stored form "sha256:<64 hex>" into hash_out
 * (72 bytes incl. NUL).  Returns 0 or -1 if the RNG fails. */
int auth_key_new(char key_out[48], char hash_out[72]);

/* Stored form of a key.  Cannot fail. */
void auth_key_hash(const char *key, size_t keylen, char hash_out[72]);

/* Append the stored form hash ("sha256:<64 lowercase hex>") as one line to
 * the hashes file at path, creating it with mode 0600 if absent.  An
 * existing file must pass the secret-file checks (regular, no symlink, mode
 * & 077 == 0).  Returns 0, or -1 with a message (path and reason, never the
 * hash) in err. */
int auth_append_hash(const char *path, const char *hash, char *err,
                     size_t errlen);

#endif
