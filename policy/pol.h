/* pol: the policy engine (placeholder header; see docs/rules.md). */
#ifndef TG_POL_H
#define TG_POL_H

/* Version string of the policy engine.  Cannot fail. */
const char *pol_version(void);

#endif
