/*
 * server: `transgate serve`: load and validate everything, start the
 * workers, and handle signals (SIGTERM/SIGINT drain and exit 0).
 */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include "audit.h"
#include "config.h"

/* The audit trail's settings as cfg states them (paths borrowed from cfg).
 * Cannot fail. */
void server_audit_conf(const tg_config *cfg, audit_conf *ac);

/* Run the gateway with the config at path until told to stop.  Returns the
 * process exit status: 0 after a clean drain, 1 when it could not start. */
int server_run(const char *config_path);

#endif
