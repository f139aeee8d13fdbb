#include "pol.h"

const char *pol_version(void)
{
    return "0.1";
}
