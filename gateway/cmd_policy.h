/*
 * cmd_policy: the `transgate policy` subcommand, the tool security staff use
 * to tune rule packs: `transgate policy test [-r RULES]... [--json] [FILE|-]`
 * shows each detection, the masked text, the classification and the
 * decision for a text of their own.
 */
#ifndef TG_CMD_POLICY_H
#define TG_CMD_POLICY_H

/* Run the subcommand; argv[0] is "policy".  Returns the process exit status:
 * 0 allowed, 3 refused, 1 error (rule pack, input), 2 usage.  Writes the
 * report to stdout and problems to stderr; never logs the text itself
 * anywhere but stdout. */
int cmd_policy(int argc, char **argv);

#endif
