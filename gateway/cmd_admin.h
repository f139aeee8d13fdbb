/*
 * cmd_admin: `transgate admin suspend|resume|status`, the suspend switch
 * (OPS-1) from the command line, so security staff need not hand-craft
 * HTTP on the admin socket.  Talks to the running gateway's admin plane
 * (admin.h); finds the socket in the configuration or takes it as given.
 */
#ifndef TG_CMD_ADMIN_H
#define TG_CMD_ADMIN_H

/* Exit statuses of `transgate admin`. */
enum {
    ADMIN_EXIT_OK = 0,          /* done, and recorded in the audit trail */
    ADMIN_EXIT_FAILED = 1,      /* not done: refused by the gateway, or it
                                   could not be reached */
    ADMIN_EXIT_USAGE = 2,       /* usage, or the configuration unreadable */
    ADMIN_EXIT_UNRECORDED = 3   /* done, but the audit trail has not (yet)
                                   recorded it */
};

/* Run the subcommand; argv[0] is "admin".  Returns an ADMIN_EXIT_*
 * status; the result goes to stdout, problems and warnings to stderr. */
int cmd_admin(int argc, char **argv);

#endif
