/*
 * pol_validate: validators that confirm a pattern match (check digits,
 * numbering-plan lengths, address and date ranges), and UTF-8 checking.
 * Pure functions over the matched bytes.
 */
#include <string.h>

#include "pol_internal.h"

size_t pol_utf8_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 1;
}

int pol_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            if (i + 1 >= n || (s[i + 1] & 0xc0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            if (i + 2 >= n || (s[i + 1] & 0xc0) != 0x80 ||
                (s[i + 2] & 0xc0) != 0x80)
                return 0;
            if (c == 0xe0 && s[i + 1] < 0xa0)
                return 0;           /* overlong */
            if (c == 0xed && s[i + 1] >= 0xa0)
                return 0;           /* surrogate */
            i += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            if (i + 3 >= n || (s[i + 1] & 0xc0) != 0x80 ||
                (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
                return 0;
            if (c == 0xf0 && s[i + 1] < 0x90)
                return 0;           /* overlong */
            if (c == 0xf4 && s[i + 1] >= 0x90)
                return 0;           /* above U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Digit value at s[i] (ASCII or full-width U+FF10..FF19) and its byte
 * length in *adv; -1 when not a digit. */
static int pol_digit_at(const unsigned char *s, size_t n, size_t i, size_t *adv)
{
    if (s[i] >= '0' && s[i] <= '9') {
        *adv = 1;
        return s[i] - '0';
    }
    if (i + 2 < n && s[i] == 0xef && s[i + 1] == 0xbc &&
        s[i + 2] >= 0x90 && s[i + 2] <= 0x99) {
        *adv = 3;
        return s[i + 2] - 0x90;
    }
    *adv = pol_utf8_len(s[i]);
    return -1;
}

size_t pol_digits(const char *str, size_t n, unsigned char *out, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, k = 0, adv;

    while (i < n) {
        int d = pol_digit_at(s, n, i, &adv);
        if (d >= 0) {
            if (k < max)
                out[k] = (unsigned char)d;
            k++;
        }
        i += adv;
    }
    return k;
}

int pol_check_mynumber(const unsigned char d[12])
{
    /* Ordinance on the 個人番号 check digit: P(n) is the n-th digit counted
     * from the right of the first eleven, Q(n) = n+1 for n <= 6, n-5
     * otherwise; check = 11 - (sum mod 11), 0 when the remainder is <= 1. */
    unsigned sum = 0, n, r, check;

    for (n = 1; n <= 11; n++) {
        unsigned p = d[11 - n];
        unsigned q = n <= 6 ? n + 1 : n - 5;
        sum += p * q;
    }
    r = sum % 11;
    check = r <= 1 ? 0 : 11 - r;
    return check == d[11];
}

int pol_check_corporate(const unsigned char d[13])
{
    /* 法人番号: the first digit is the check digit over the twelve that
     * follow; P(n) counted from the right, Q(n) = 1 for odd n, 2 for even;
     * check = 9 - (sum mod 9). */
    unsigned sum = 0, n;

    for (n = 1; n <= 12; n++) {
        unsigned p = d[13 - n];
        sum += p * ((n & 1) ? 1u : 2u);
    }
    return (9 - sum % 9) == d[0];
}

int pol_check_luhn(const unsigned char *d, size_t n)
{
    unsigned sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned v = d[n - 1 - i];
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static int pol_has_plus(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '+')
            return 1;
        if (i + 2 < n && (unsigned char)s[i] == 0xef &&
            (unsigned char)s[i + 1] == 0xbc && (unsigned char)s[i + 2] == 0x8b)
            return 1;   /* U+FF0B full-width plus */
    }
    return 0;
}

static int pol_prefix(const unsigned char *d, size_t n, const char *p)
{
    size_t i, pl = strlen(p);

    if (pl > n)
        return 0;
    for (i = 0; i < pl; i++)
        if (d[i] != (unsigned char)(p[i] - '0'))
            return 0;
    return 1;
}

static int pol_valid_jp_phone(const char *s, size_t len)
{
    unsigned char raw[24], nat[24];
    size_t n = pol_digits(s, len, raw, sizeof raw), k = 0, i = 0;

    if (n > sizeof raw)
        return 0;
    if (pol_has_plus(s, len)) {
        if (n < 2 || raw[0] != 8 || raw[1] != 1)
            return 0;
        i = 2;
        if (i < n && raw[i] == 0)
            i++;                    /* "+81 (0)3 ..." */
    }
    if (i > 0)
        nat[k++] = 0;
    for (; i < n; i++)
        nat[k++] = raw[i];
    if (k < 10 || k > 11 || nat[0] != 0)
        return 0;
    if (k == 11)
        return pol_prefix(nat, k, "070") || pol_prefix(nat, k, "080") ||
               pol_prefix(nat, k, "090") || pol_prefix(nat, k, "050") ||
               pol_prefix(nat, k, "020") || pol_prefix(nat, k, "0800");
    /* ten digits: fixed lines, 0120 / 0570 / 0990 */
    if (nat[1] == 0)
        return 0;
    if (pol_prefix(nat, k, "070") || pol_prefix(nat, k, "080") ||
        pol_prefix(nat, k, "090") || pol_prefix(nat, k, "050") ||
        pol_prefix(nat, k, "020"))
        return 0;
    return 1;
}

static int pol_valid_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    int parts = 0;

    while (parts < 4) {
        unsigned v = 0, nd = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned)(s[i] - '0');
            nd++;
            i++;
            if (nd > 3)
                return 0;
        }
        if (nd == 0 || v > 255 || (nd > 1 && s[i - nd] == '0'))
            return 0;
        parts++;
        if (parts < 4) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    return i == n;
}

static int pol_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
        return 1;
    return 0;
}

static int pol_valid_ipv6(const char *s, size_t n)
{
    size_t i = 0, groups = 0;
    int dbl = 0, letters = 0;

    if (n < 3)
        return 0;
    if (s[0] == ':') {
        if (n < 2 || s[1] != ':')
            return 0;
        dbl = 1;
        i = 2;
        if (i == n)
            return 0;
    }
    while (i < n) {
        size_t nd = 0;
        while (i < n && pol_hexval(s[i])) {
            if (s[i] > '9')
                letters = 1;
            nd++;
            i++;
        }
        if (nd == 0 || nd > 4)
            return 0;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (dbl)
                return 0;
            dbl = 1;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return 0;               /* trailing single colon */
        }
    }
    (void)letters;
    if (dbl)
        return groups >= 1 && groups <= 7;
    return groups == 8;
}

static int pol_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int pol_ymd_ok(unsigned y, unsigned m, unsigned d)
{
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && y >= 1000 && !pol_leap(y))
        return 0;
    return 1;
}

/* Month number from an English month name at s (3-letter prefix), or 0. */
static unsigned pol_month_name(const char *s, size_t n)
{
    static const char *names[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                    "jul", "aug", "sep", "oct", "nov", "dec"};
    size_t i, m;

    for (i = 0; i + 3 <= n; i++) {
        char a[3];
        for (m = 0; m < 3; m++) {
            char c = s[i + m];
            a[m] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        for (m = 0; m < 12; m++)
            if (memcmp(a, names[m], 3) == 0)
                return (unsigned)m + 1;
    }
    return 0;
}

static int pol_valid_date(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned num[4] = {0, 0, 0, 0}, nd[4] = {0, 0, 0, 0};
    size_t i = 0, k = 0, adv;
    int in = 0;
    unsigned mon;

    while (i < n) {
        int d = pol_digit_at(s, n, i, &adv);
        if (d >= 0) {
            if (!in) {
                if (k == 4)
                    return 0;
                in = 1;
                k++;
            }
            if (nd[k - 1] >= 4)
                return 0;
            num[k - 1] = num[k - 1] * 10 + (unsigned)d;
            nd[k - 1]++;
        } else {
            in = 0;
        }
        i += adv;
    }
    mon = pol_month_name(str, n);
    if (mon != 0) {
        if (k != 2)
            return 0;
        if (nd[1] == 4)
            return pol_ymd_ok(num[1], mon, num[0]);
        if (nd[0] == 4)
            return pol_ymd_ok(num[0], mon, num[1]);
        return 0;
    }
    if (k != 3)
        return 0;
    if (nd[0] == 4)
        return num[0] >= 1868 && num[0] <= 2100 && pol_ymd_ok(num[0], num[1], num[2]);
    if (nd[2] == 4)
        return num[2] >= 1868 && num[2] <= 2100 &&
               (pol_ymd_ok(num[2], num[0], num[1]) || pol_ymd_ok(num[2], num[1], num[0]));
    /* era year (昭和, 平成, 令和 ...): 1..64 */
    return num[0] >= 1 && num[0] <= 64 && pol_ymd_ok(0, num[1], num[2]);
}

int pol_validate_digits(pol_validator v, const unsigned char *d, size_t k)
{
    switch (v) {
    case POL_V_MYNUMBER:
        return k == 12 && pol_check_mynumber(d);
    case POL_V_CORPORATE:
        return k == 13 && pol_check_corporate(d);
    case POL_V_LUHN:
        return k >= 14 && k <= 19 && d[0] >= 2 && d[0] <= 6 && pol_check_luhn(d, k);
    case POL_V_NONE:
    case POL_V_JP_PHONE:
    case POL_V_IPV4:
    case POL_V_IPV6:
    case POL_V_DATE:
        break;
    }
    return -1;
}

int pol_validate(pol_validator v, const char *s, size_t n)
{
    unsigned char d[POL_VALIDATE_DIGITS];
    size_t k;

    switch (v) {
    case POL_V_NONE:
        return 1;
    case POL_V_MYNUMBER:
    case POL_V_CORPORATE:
    case POL_V_LUHN:
        /* Decided by the digits alone (pol_validate_digits). */
        k = pol_digits(s, n, d, sizeof d);
        return pol_validate_digits(v, d, k) == 1;
    case POL_V_JP_PHONE:
        return pol_valid_jp_phone(s, n);
    case POL_V_IPV4:
        return pol_valid_ipv4(s, n);
    case POL_V_IPV6:
        return pol_valid_ipv6(s, n);
    case POL_V_DATE:
        return pol_valid_date(s, n);
    }
    return 0;
}
