/* arith.h — evaluates an arithmetic expression in double precision (the
 * "arith" task kind).
 *
 * Grammar (bytes, not NUL-terminated; blanks are space, tab, CR and LF and may
 * appear anywhere between tokens):
 *   expr   = term   { ("+" | "-") term }
 *   term   = unary  { ("*" | "/" | "%") unary }
 *   unary  = ("-" | "+") unary | primary
 *   primary = number | "(" expr ")"
 *   number = digits [ "." [digits] ] [ exp ] | "." digits [ exp ]
 *   exp    = ("e" | "E") [ "+" | "-" ] digits
 * Operators are left-associative; "/" is true division and "%" is C's fmod
 * (the result takes the dividend's sign: -7 % 3 = -1).
 *
 * Errors (one line in err, truncated to errlen):
 *   division by zero                        x / 0, x % 0
 *   result out of range                     an operation overflowed to inf
 *   number out of range                     a literal overflows (1e999)
 *   number too long                         a literal over ARITH_NUMBER_MAX bytes
 *   expression nested too deeply            over ARITH_DEPTH_MAX nested "("
 *   empty expression                        nothing but blanks
 *   unexpected end of expression            "1+", "(1+2"
 *   syntax error at column N: unexpected 'c' (or: unexpected byte 0xNN)
 * Columns count bytes from 1.
 *
 * Hot path: no allocation, no syscall, no global; reentrant. Literals that
 * need it are converted with strtod, which reads the C locale's decimal point
 * as long as the process never calls setlocale(LC_NUMERIC, ...).
 */
#ifndef FORQ_ARITH_H
#define FORQ_ARITH_H

#include <stddef.h>

#define ARITH_DEPTH_MAX 256  /* nested parentheses (unary signs do not recurse) */
#define ARITH_NUMBER_MAX 512 /* bytes in one number literal */
#define ARITH_FORMAT_MAX 32  /* a buffer this big holds any arith_format output */

/* Evaluates len bytes at expr. Returns 0 with the result in *out (finite), or
 * -1 with the reason in err (when err != NULL and errlen > 0); *out is then
 * unchanged. Never reads past expr + len. */
int arith_eval(const char *expr, size_t len, double *out, char *err, size_t errlen);

/* Writes v as text: a whole number with |v| < 2^53 prints without a decimal
 * point ("7", "-3"; -0 prints "0"), anything else as the shortest of %.15g,
 * %.16g, %.17g that reads back as v ("3.5", "0.1", "1e+20"). Returns the length
 * like snprintf does: the output was truncated if the return is >= cap. */
size_t arith_format(double v, char *buf, size_t cap);

#endif
