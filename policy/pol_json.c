/*
 * pol_json: find where a value sits in a rule pack's raw JSON text.
 *
 * Jansson reports line and column for syntax errors only; a semantic error
 * (a bad regular expression, an unknown key) must also say where it is, so
 * this walks the raw text along a JSON path.  The text has already been
 * parsed by Jansson, so it is well-formed; the walker still checks bounds.
 */
#include <string.h>

#include "pol_internal.h"

static size_t pol_js_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* t[*i] is '"': move past the closing quote.  Returns 0 or -1. */
static int pol_js_string(const char *t, size_t len, size_t *i)
{
    size_t j = *i + 1;

    while (j < len) {
        if (t[j] == '\\') {
            j += 2;
            continue;
        }
        if (t[j] == '"') {
            *i = j + 1;
            return 0;
        }
        j++;
    }
    return -1;
}

static int pol_js_value(const char *t, size_t len, size_t *i, int depth)
{
    size_t j = pol_js_ws(t, len, *i);

    if (j >= len || depth > 64)
        return -1;
    if (t[j] == '"') {
        if (pol_js_string(t, len, &j) != 0)
            return -1;
    } else if (t[j] == '{' || t[j] == '[') {
        char close = t[j] == '{' ? '}' : ']';
        j = pol_js_ws(t, len, j + 1);
        if (j < len && t[j] == close) {
            *i = j + 1;
            return 0;
        }
        for (;;) {
            if (close == '}') {
                j = pol_js_ws(t, len, j);
                if (j >= len || t[j] != '"' || pol_js_string(t, len, &j) != 0)
                    return -1;
                j = pol_js_ws(t, len, j);
                if (j >= len || t[j] != ':')
                    return -1;
                j++;
            }
            if (pol_js_value(t, len, &j, depth + 1) != 0)
                return -1;
            j = pol_js_ws(t, len, j);
            if (j < len && t[j] == ',') {
                j++;
                continue;
            }
            if (j < len && t[j] == close) {
                j++;
                break;
            }
            return -1;
        }
    } else {
        while (j < len && t[j] != ',' && t[j] != '}' && t[j] != ']' &&
               t[j] != ' ' && t[j] != '\n' && t[j] != '\r' && t[j] != '\t')
            j++;
    }
    *i = j;
    return 0;
}

int pol_json_locate(const char *t, size_t len, const pol_jpath *path,
                    size_t depth, int *line, int *col)
{
    size_t i = pol_js_ws(t, len, 0), d, k;
    int ln = 1, cl = 1;

    for (d = 0; d < depth; d++) {
        if (path[d].key != NULL) {
            size_t kl = strlen(path[d].key);
            if (i >= len || t[i] != '{')
                return -1;
            i++;
            for (;;) {
                size_t ks;
                i = pol_js_ws(t, len, i);
                if (i >= len || t[i] != '"')
                    return -1;
                ks = i + 1;
                if (pol_js_string(t, len, &i) != 0)
                    return -1;
                i = pol_js_ws(t, len, i);
                if (i >= len || t[i] != ':')
                    return -1;
                i = pol_js_ws(t, len, i + 1);
                if (i - ks >= kl + 1 && memcmp(t + ks, path[d].key, kl) == 0 &&
                    t[ks + kl] == '"')
                    break;
                if (pol_js_value(t, len, &i, 0) != 0)
                    return -1;
                i = pol_js_ws(t, len, i);
                if (i >= len || t[i] != ',')
                    return -1;
                i++;
            }
        } else {
            if (i >= len || t[i] != '[')
                return -1;
            i++;
            for (k = 0; k < path[d].index; k++) {
                if (pol_js_value(t, len, &i, 0) != 0)
                    return -1;
                i = pol_js_ws(t, len, i);
                if (i >= len || t[i] != ',')
                    return -1;
                i++;
            }
            i = pol_js_ws(t, len, i);
        }
    }
    for (k = 0; k < i && k < len; k++) {
        unsigned char c = (unsigned char)t[k];
        if (c == '\n') {
            ln++;
            cl = 1;
        } else if ((c & 0xc0) != 0x80) {
            cl++;
        }
    }
    *line = ln;
    *col = cl;
    return 0;
}
