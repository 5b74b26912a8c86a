#!/usr/bin/env python3
"""Writes the hostile-input corpus: one `NAME.http` file per case (the files are the source of
truth and are committed; this script is how they were made and how to add more).

File format (read by the conformance tool, conform/src/hostile.rs, compiled in; tests/hostile.rs runs it):

    expect: <status> [<status> ...] [close]
    rule: <id>               (one of conform/src/rules.rs: the condition the case checks)
    note: <what the case is>
    ---
    <raw request bytes to the end of the file, exactly as sent>

`expect` lists the statuses the reference server sends, in order; `close` means it closes the
connection after the last one, otherwise it keeps it open for the next request. Every request
goes to the demo handler of `hijack serve` (SPEC.md#conformance-endpoints): any path other than
the conformance endpoints reads the whole request body and answers 200. The rule applies to the
faulty request (the last one not answered 200) and sets the case's levels, cite and accepted
statuses from the RFC sentence it quotes: a case has no level of its own.

Run: python3 conform/hostile/generate.py   (rewrites every case it knows; leaves others alone)
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Statuses and shapes used below.
POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
HELLO_CHUNKS = b"5\r\nhello\r\n0\r\n\r\n"
# Over the default max_head_bytes (1 MiB) and over Go's 1 MiB + 4096 too.
OVER_MAX_HEAD = (1 << 20) + 64 * 1024

CASES = []


def case(name, expect, rule, note, raw):
    CASES.append((name, expect, rule, note, raw))


# --- CL.TE / TE.CL: both framings present (RFC 9112 §6.1; SPEC.md#bad-input: 400) ---
case("cl-te-basic", "400 close", "te-and-cl",
     "CL.TE: Content-Length then Transfer-Encoding: chunked; a CL front end forwards the smuggled G (SPEC bad-input: TE and CL)",
     POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")
case("te-cl-basic", "400 close", "te-and-cl",
     "TE.CL: Transfer-Encoding: chunked then Content-Length: 3; a TE front end forwards a second request inside the chunk (SPEC bad-input: TE and CL)",
     POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")
case("cl-te-zero-length", "400 close", "te-and-cl",
     "Content-Length: 0 with Transfer-Encoding: chunked (SPEC bad-input: TE and CL)",
     POST + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
case("cl-te-smuggled-request", "400 close", "te-and-cl",
     "CL.TE carrying a whole second request after the last chunk (SPEC bad-input: TE and CL)",
     POST + b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n")

# --- TE.TE: obfuscated Transfer-Encoding ---
case("te-te-space-before-colon", "400 close", "space-before-colon",
     "'Transfer-Encoding : chunked' with Content-Length: whitespace before the colon is invalid (SPEC bad-input: bad field name)",
     POST + b"Content-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
case("te-te-tab-before-colon", "400 close", "space-before-colon",
     "'Transfer-Encoding<TAB>: chunked': whitespace before the colon (SPEC bad-input: bad field name)",
     POST + b"Content-Length: 4\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n")
case("te-te-tab-before-value", "200", "valid-request",
     "'Transfer-Encoding:<TAB>chunked': HTAB is optional whitespace, a valid chunked request (control case)",
     POST + b"Transfer-Encoding:\tchunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-chunked-identity", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: chunked, identity': the final coding is not chunked, the body length cannot be known (SPEC bad-input)",
     POST + b"Transfer-Encoding: chunked, identity\r\n\r\n" + HELLO_CHUNKS)
case("te-te-identity-chunked", "501 close", "te-unknown-coding",
     "'Transfer-Encoding: identity, chunked': a coding before a final chunked that the server does not implement (SPEC bad-input)",
     POST + b"Transfer-Encoding: identity, chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-xchunked", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: xchunked': the final coding is not chunked (SPEC bad-input)",
     POST + b"Transfer-Encoding: xchunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-xchunked-with-cl", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: xchunked' with Content-Length: the final coding is not chunked, whatever the Content-Length (SPEC bad-input)",
     POST + b"Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\nhello")
case("te-te-vertical-tab-before-value", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding:<VT>chunked': VT is a control byte, not whitespace, so the coding is not chunked (SPEC bad-input: invalid field value)",
     POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-vertical-tab-after-value", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: chunked<VT>': the coding is not chunked (SPEC bad-input: invalid field value)",
     POST + b"Transfer-Encoding: chunked\x0b\r\n\r\n" + HELLO_CHUNKS)
case("te-te-form-feed", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding:<FF>chunked': FF is a control byte, not whitespace, so the coding is not chunked (SPEC bad-input: invalid field value)",
     POST + b"Transfer-Encoding:\x0cchunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-duplicate-lines", "400 close", "te-chunked-twice",
     "two 'Transfer-Encoding: chunked' lines: chunked applied twice (SPEC bad-input: chunked twice)",
     POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-duplicate-lines-identity", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: chunked' and 'Transfer-Encoding: identity' lines: the final coding is identity (SPEC bad-input)",
     POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + HELLO_CHUNKS)
case("te-te-value-upper-case", "200", "valid-request",
     "'Transfer-Encoding: CHUNKED': coding names are case-insensitive (RFC 9112 7), a valid request (control case)",
     POST + b"Transfer-Encoding: CHUNKED\r\n\r\n" + HELLO_CHUNKS)
case("te-te-name-upper-case", "200", "valid-request",
     "'TRANSFER-ENCODING: chunked': field names are case-insensitive, a valid request (control case)",
     POST + b"TRANSFER-ENCODING: chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-mixed-case-with-cl", "400 close", "te-and-cl",
     "'tRaNsFeR-eNcOdInG: cHuNkEd' with Content-Length: still TE and CL (SPEC bad-input)",
     POST + b"Content-Length: 5\r\ntRaNsFeR-eNcOdInG: cHuNkEd\r\n\r\n0\r\n\r\n")
case("te-te-obs-fold", "400 close", "obs-fold",
     "'Transfer-Encoding:' folded onto the next line with a leading space (obs-fold, SPEC bad-input: 400)",
     POST + b"Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n")
case("te-te-quoted", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: \"chunked\"': a quoted string is not a coding token, so the final coding is not chunked (SPEC bad-input: malformed Transfer-Encoding)",
     POST + b"Transfer-Encoding: \"chunked\"\r\n\r\n" + HELLO_CHUNKS)
case("te-te-empty-list-item", "200", "empty-list-element",
     "'Transfer-Encoding: , chunked': an empty list element is ignored, chunked once (SPEC silent)",
     POST + b"Transfer-Encoding: , chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-te-trailing-whitespace", "200", "valid-request",
     "'Transfer-Encoding: chunked ' with trailing space: OWS around the value is not part of it (control case)",
     POST + b"Transfer-Encoding: chunked \r\n\r\n" + HELLO_CHUNKS)
case("te-te-underscore-name", "200", "valid-request",
     "'Transfer_Encoding: chunked' is another field; Content-Length frames the body (control case)",
     POST + b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello")
case("te-te-leading-space-name", "400 close", "whitespace-before-first-field",
     "' Transfer-Encoding: chunked' as the first field line: whitespace before the first field; a server may ignore the line, and Content-Length then frames the body (SPEC bad-input: obs-fold)",
     b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
case("te-te-nul-in-value", "400 close", "nul-in-field-value",
     "'Transfer-Encoding: chunked<NUL>' (SPEC bad-input: NUL byte)",
     POST + b"Transfer-Encoding: chunked\x00\r\n\r\n" + HELLO_CHUNKS)
case("te-te-comma-chunked-twice", "400 close", "te-chunked-twice",
     "'Transfer-Encoding: chunked, chunked' (SPEC bad-input: chunked applied more than once)",
     POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-gzip-chunked", "501 close", "te-unknown-coding",
     "'Transfer-Encoding: gzip, chunked': a coding before a final chunked that the server does not implement (SPEC bad-input)",
     POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-chunked-gzip", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: chunked, gzip': the final coding is not chunked (SPEC bad-input)",
     POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + HELLO_CHUNKS)
case("te-gzip", "400 close", "te-final-not-chunked",
     "'Transfer-Encoding: gzip' alone: the body length cannot be known (SPEC bad-input)",
     POST + b"Transfer-Encoding: gzip\r\n\r\nhello")
case("te-empty", "400 close", "te-and-cl",
     "'Transfer-Encoding:' empty (SPEC bad-input: empty Transfer-Encoding)",
     POST + b"Transfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello")
case("te-http10", "400 close", "te-in-http10",
     "Transfer-Encoding in an HTTP/1.0 request: faulty framing (SPEC bad-input: 400)",
     b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + HELLO_CHUNKS)
case("te-cl-http10", "400 close", "te-in-http10",
     "Transfer-Encoding and Content-Length in an HTTP/1.0 request (SPEC bad-input: 400)",
     b"POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello")

# --- Content-Length ---
case("cl-duplicate-same", "200", "content-length-same-values",
     "two identical 'Content-Length: 5' lines are accepted (SPEC bad-input: identical ones are accepted)",
     POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
case("cl-duplicate-differ", "400 close", "differing-content-length",
     "'Content-Length: 5' and 'Content-Length: 6' (SPEC bad-input: differing Content-Length)",
     POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
case("cl-list-same", "200", "content-length-same-values",
     "'Content-Length: 5, 5' is accepted as 5 (SPEC bad-input: lists are split, identical values accepted)",
     POST + b"Content-Length: 5, 5\r\n\r\nhello")
case("cl-list-differ", "400 close", "differing-content-length",
     "'Content-Length: 5, 6' (SPEC bad-input: differing Content-Length values)",
     POST + b"Content-Length: 5, 6\r\n\r\nhello!")
case("cl-negative", "400 close", "invalid-content-length",
     "'Content-Length: -5' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: -5\r\n\r\nhello")
case("cl-plus-signed", "400 close", "invalid-content-length",
     "'Content-Length: +5' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: +5\r\n\r\nhello")
case("cl-hex", "400 close", "invalid-content-length",
     "'Content-Length: 0x5' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: 0x5\r\n\r\nhello")
case("cl-overflow", "400 close", "content-length-too-large",
     "'Content-Length: 18446744073709551616' is 2^64 (SPEC bad-input: over 2^64 - 1; 413 is as good)",
     POST + b"Content-Length: 18446744073709551616\r\n\r\nhello")
case("cl-overflow-huge", "400 close", "content-length-too-large",
     "a 40-digit Content-Length (SPEC bad-input: over 2^64 - 1; 413 is as good)",
     POST + b"Content-Length: 1000000000000000000000000000000000000005\r\n\r\nhello")
case("cl-empty", "400 close", "invalid-content-length",
     "'Content-Length:' empty (SPEC bad-input: invalid Content-Length)",
     POST + b"Content-Length: \r\n\r\n")
case("cl-trailing-junk", "400 close", "invalid-content-length",
     "'Content-Length: 5abc' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: 5abc\r\n\r\nhello")
case("cl-decimal-point", "400 close", "invalid-content-length",
     "'Content-Length: 5.0' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: 5.0\r\n\r\nhello")
case("cl-inner-space", "400 close", "invalid-content-length",
     "'Content-Length: 5 5' (SPEC bad-input: not all digits)",
     POST + b"Content-Length: 5 5\r\n\r\nhello")
case("cl-leading-zeros", "200", "valid-request",
     "'Content-Length: 0005' is 1*DIGIT, the value 5 (control case)",
     POST + b"Content-Length: 0005\r\n\r\nhello")
case("cl-space-before-colon", "400 close", "space-before-colon",
     "'Content-Length : 5' (SPEC bad-input: bad field name)",
     POST + b"Content-Length : 5\r\n\r\nhello")
case("cl-body-then-pipelined", "200 200", "valid-request",
     "a 5-byte body then a second request: both answered, in order (control case)",
     POST + b"Content-Length: 5\r\n\r\nhello" + GET)

# --- chunked bodies: a framing error makes the body read fail: 400 and close (SPEC bad-input, request bodies) ---
case("chunk-valid", "200", "valid-request", "a valid chunked body (control case)", CHUNKED + HELLO_CHUNKS)
case("chunk-size-overflow", "400 close", "chunk-size-too-large",
     "chunk size of 17 hex digits overflows 64 bits (SPEC bad-input: the body fails; 413 is as good)",
     CHUNKED + b"10000000000000000\r\nhello\r\n0\r\n\r\n")
case("chunk-size-overflow-ffff", "400 close", "chunk-size-too-large",
     "chunk size 'fffffffffffffffff' (17 digits) overflows 64 bits (SPEC bad-input; 413 is as good)",
     CHUNKED + b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n")
case("chunk-size-leading-zeros", "200", "chunk-size-leading-zeros",
     "chunk size with 20 leading zeros is the value 5: no overflow (SPEC silent: only overflow is rejected)",
     CHUNKED + b"000000000000000000005\r\nhello\r\n0\r\n\r\n")
case("chunk-size-negative", "400 close", "chunked-invalid",
     "chunk size '-5' is not hexadecimal (SPEC bad-input)",
     CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-plus", "400 close", "chunked-invalid",
     "chunk size '+5' is not hexadecimal (SPEC bad-input)",
     CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-0x-prefix", "400 close", "chunked-invalid",
     "chunk size '0x5' is not hexadecimal (SPEC bad-input)",
     CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-leading-space", "400 close", "chunked-invalid",
     "chunk size ' 5' with leading whitespace (SPEC bad-input: not hexadecimal)",
     CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-trailing-space", "200", "chunk-size-trailing-whitespace",
     "chunk size '5 ' with whitespace before CR (SPEC bad-input: whitespace allowed between size and CR)",
     CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n")
case("chunk-size-trailing-junk", "400 close", "chunked-invalid",
     "chunk size '5x' (SPEC bad-input: not hexadecimal)",
     CHUNKED + b"5x\r\nhello\r\n0\r\n\r\n")
case("chunk-size-empty", "400 close", "chunked-invalid",
     "an empty chunk-size line (SPEC bad-input: not hexadecimal)",
     CHUNKED + b"\r\nhello\r\n0\r\n\r\n")
case("chunk-size-bare-lf", "400 close", "chunked-invalid",
     "chunk-size line ended by a bare LF (SPEC bad-input: chunk-size line with a bare LF)",
     CHUNKED + b"5\nhello\r\n0\r\n\r\n")
case("chunk-size-bare-cr", "400 close", "chunked-invalid",
     "chunk-size line with a bare CR (SPEC bad-input: chunk-size line with a bare CR)",
     CHUNKED + b"5\rhello\r\n0\r\n\r\n")
case("chunk-ext-valid", "200", "chunk-ext-unrecognized",
     "chunk extensions 'name=value' and a quoted value, unknown to the server and ignored (control case)",
     CHUNKED + b"5;name=value\r\nhello\r\n0;x=\"y z\"\r\n\r\n")
case("chunk-ext-control-byte", "400 close", "chunked-invalid",
     "a control byte (0x01) in a chunk extension (SPEC bad-input)",
     CHUNKED + b"5;name=\x01\r\nhello\r\n0\r\n\r\n")
case("chunk-ext-bare-lf", "400 close", "chunked-invalid",
     "chunk extension ended by a bare LF (SPEC bad-input: chunk-size line with a bare LF)",
     CHUNKED + b"5;name\nhello\r\n0\r\n\r\n")
case("chunk-ext-nul", "400 close", "chunked-invalid",
     "a NUL byte in a chunk extension (SPEC bad-input: control byte in a chunk extension)",
     CHUNKED + b"5;na\x00me\r\nhello\r\n0\r\n\r\n")
case("chunk-ext-too-long", "400 close", "chunk-ext-too-long",
     "a 5000-byte chunk extension (SPEC bad-input: chunk-size line over 4096 bytes; any 4xx is as good)",
     CHUNKED + b"5;" + b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n")
case("chunk-data-too-long", "400 close", "chunked-invalid",
     "chunk of size 3 followed by 5 data bytes (SPEC bad-input: data not followed by CRLF)",
     CHUNKED + b"3\r\nhello\r\n0\r\n\r\n")
case("chunk-data-missing-crlf", "400 close", "chunked-invalid",
     "chunk data followed directly by the next chunk size (SPEC bad-input: data not followed by CRLF)",
     CHUNKED + b"5\r\nhello0\r\n\r\n")
case("chunk-data-bare-lf", "400 close", "chunked-invalid",
     "chunk data followed by a bare LF (SPEC bad-input: data not followed by CRLF)",
     CHUNKED + b"5\r\nhello\n0\r\n\r\n")
case("chunk-last-missing-crlf", "400 close", "chunked-invalid",
     "last chunk without the final CRLF, then a second request: its request line is not a valid trailer field (SPEC silent)",
     CHUNKED + b"5\r\nhello\r\n0\r\n" + GET)
case("chunk-trailer-valid", "200", "valid-request",
     "a valid trailer field (read and dropped; control case)",
     CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")
case("chunk-trailer-then-pipelined", "200 200", "valid-request",
     "a valid trailer field, then a second request in the same write: both answered, in order (found by --explore: hyper 1.6 closes after a trailer)",
     CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n" + GET)
case("chunk-trailer-obs-fold", "400 close", "obs-fold",
     "an obs-fold in the trailer section (SPEC bad-input)",
     CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n folded\r\n\r\n")
case("chunk-trailer-empty-name", "400 close", "invalid-field-line",
     "a trailer field with an empty name (SPEC bad-input)",
     CHUNKED + b"5\r\nhello\r\n0\r\n: v\r\n\r\n")
case("chunk-trailer-control-byte", "400 close", "ctl-in-field-value",
     "a control byte (0x01) in a trailer field (SPEC bad-input)",
     CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: a\x01b\r\n\r\n")
case("chunk-trailer-bare-lf", "400 close", "bare-lf",
     "a trailer field ended by a bare LF (SPEC bad-input)",
     CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n")
case("chunk-trailer-no-colon", "400 close", "invalid-field-line",
     "a trailer line without a colon: trailer fields are field lines (SPEC silent)",
     CHUNKED + b"5\r\nhello\r\n0\r\nnot a field line\r\n\r\n")
case("chunk-then-pipelined", "200 200", "valid-request",
     "a chunked body then a second request: both answered, in order (control case)",
     CHUNKED + HELLO_CHUNKS + GET)

# --- request head: line endings, NUL and control bytes (SPEC bad-input) ---
case("obs-fold", "400 close", "obs-fold", "an obs-fold continuation line (SPEC bad-input: 400)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n")
case("obs-fold-tab", "400 close", "obs-fold", "an obs-fold continuation line starting with HTAB (SPEC bad-input: 400)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n")
case("bare-cr-in-value", "400 close", "bare-cr", "a bare CR inside a field value (SPEC bad-input)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n")
case("bare-cr-request-line", "400 close", "bare-cr", "the request line ended by a bare CR (SPEC bad-input)",
     b"GET / HTTP/1.1\rHost: x\r\n\r\n")
case("bare-lf-request-line", "400 close", "bare-lf", "the request line ended by a bare LF (SPEC bad-input: 400)",
     b"GET / HTTP/1.1\nHost: x\r\n\r\n")
case("bare-lf-field-line", "400 close", "bare-lf", "a field line ended by a bare LF (SPEC bad-input: 400)",
     b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n")
case("bare-lf-everywhere", "400 close", "bare-lf", "every line ended by a bare LF (SPEC bad-input: 400)",
     b"GET / HTTP/1.1\nHost: x\n\n")
case("nul-in-target", "400 close", "invalid-request-line", "a NUL byte in the request target (SPEC bad-input)",
     b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
case("nul-in-field-name", "400 close", "invalid-field-line", "a NUL byte in a field name (SPEC bad-input)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-\x00A: b\r\n\r\n")
case("nul-in-field-value", "400 close", "nul-in-field-value", "a NUL byte in a field value (SPEC bad-input)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n")
case("ctl-in-target", "400 close", "invalid-request-line", "a control byte (0x01) in the request target (SPEC bad-input: invalid token in request line)",
     b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
case("esc-in-target", "400 close", "invalid-request-line", "an ESC byte (0x1b) in the request target (SPEC bad-input)",
     b"GET /a\x1bb HTTP/1.1\r\nHost: x\r\n\r\n")
case("del-in-target", "400 close", "invalid-request-line", "a DEL byte (0x7f) in the request target (SPEC bad-input)",
     b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n")
case("space-in-target", "400 close", "invalid-request-line", "a space inside the request target (SPEC bad-input: request line does not parse)",
     b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")
case("ctl-in-field-name", "400 close", "invalid-field-line", "a control byte (0x01) in a field name (SPEC bad-input: invalid field name)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-\x01A: b\r\n\r\n")
case("ctl-in-field-value", "400 close", "ctl-in-field-value", "a control byte (0x01) in a field value (SPEC bad-input: invalid field value)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n")
case("del-in-field-value", "400 close", "ctl-in-field-value", "a DEL byte (0x7f) in a field value (SPEC bad-input: invalid field value)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x7fc\r\n\r\n")
case("whitespace-before-first-field", "400 close", "host-missing-or-duplicate",
     "whitespace before the first field line, the only Host line: rejected, or the line ignored and then no Host, either way 400 (SPEC bad-input: obs-fold)",
     b"GET / HTTP/1.1\r\n Host: x\r\n\r\n")
case("empty-field-name", "400 close", "invalid-field-line", "a field line ': value' with an empty name (SPEC bad-input: invalid field name)",
     b"GET / HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n")
case("space-in-field-name", "400 close", "invalid-field-line", "'Content Length: 5': a space in a field name (SPEC bad-input: invalid field name)",
     POST + b"Content Length: 5\r\n\r\nhello")
case("field-without-colon", "400 close", "invalid-field-line", "a field line without a colon (SPEC bad-input: field does not parse)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n")

# --- sizes: 431 for the whole head, never 414 (SPEC bad-input) ---
case("request-line-too-long", "414 close", "request-target-too-long",
     "a request target over max_head_bytes (1 MiB): the head limit is reached inside the request line, 414 (SPEC bad-input)",
     b"GET /" + b"a" * OVER_MAX_HEAD + b" HTTP/1.1\r\nHost: x\r\n\r\n")
case("header-section-too-long", "431 close", "header-section-too-long",
     "a header section over max_head_bytes (1 MiB) in 8 KiB fields (SPEC bad-input: 431; any 4xx is as good)",
     b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-F%d: " % i + b"v" * 8192 + b"\r\n" for i in range(OVER_MAX_HEAD // 8192 + 1))
     + b"\r\n")
case("too-many-fields", "431 close", "header-section-too-long", "200 header fields, over the 128 a head may carry (SPEC bad-input: 431; any 4xx is as good)",
     b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(200)) + b"\r\n")

# --- request-target forms ---
case("absolute-form", "200", "absolute-form", "absolute-form target with a matching Host (control case)",
     b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n")
case("absolute-form-host-mismatch", "200", "absolute-form-host-mismatch",
     "absolute-form target whose host differs from Host: the target's host wins, Host is ignored, and the demo handler answers (SPEC silent)",
     b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n")
case("absolute-form-without-host", "400 close", "host-missing-or-duplicate",
     "absolute-form target without a Host field (SPEC bad-input: exactly one Host)",
     b"GET http://a.example/ HTTP/1.1\r\n\r\n")
case("asterisk-form-get", "400 close", "asterisk-form-not-options", "'GET *' (SPEC bad-input: asterisk-form outside OPTIONS)",
     b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
case("asterisk-form-post", "400 close", "asterisk-form-not-options", "'POST *' (SPEC bad-input: asterisk-form outside OPTIONS)",
     b"POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
case("asterisk-form-options", "200", "options-asterisk", "'OPTIONS *' (control case)",
     b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")

# --- Host ---
case("host-missing", "400 close", "host-missing-or-duplicate", "HTTP/1.1 without Host (SPEC bad-input)",
     b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
case("host-duplicate", "400 close", "host-missing-or-duplicate", "two Host fields (SPEC bad-input)",
     b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
case("host-duplicate-http10", "400 close", "host-missing-or-duplicate",
     "two Host fields in HTTP/1.0: RFC 9112 3.2 rejects more than one in any request (found by --explore, SPEC peers)",
     b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n")

# --- versions and request lines ---
case("http10-without-host", "200 close", "http10-close", "HTTP/1.0 needs no Host and does not keep the connection alive by default (SPEC serving loop)",
     b"GET / HTTP/1.0\r\n\r\n")
case("http10-keep-alive", "200", "http10-keep-alive", "HTTP/1.0 with Connection: keep-alive keeps the connection open (SPEC serving loop)",
     b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
case("http11-connection-close", "200 close", "connection-close", "HTTP/1.1 with Connection: close (SPEC serving loop)",
     b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
case("http09", "400 close", "invalid-request-line", "an HTTP/0.9 request line 'GET /' without a version (SPEC bad-input: version other than 1.0 or 1.1)",
     b"GET /\r\n\r\n")
case("version-http2", "400 close", "version-unsupported", "'HTTP/2.0' on an HTTP/1.1 connection (SPEC bad-input: 400; 505 is the other common answer)",
     b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
case("version-http12", "400 close", "version-minor-higher", "'HTTP/1.2' (SPEC bad-input: 400; a server may treat it as 1.1)",
     b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")
case("version-lower-case", "400 close", "invalid-request-line", "'http/1.1': the version is case-sensitive (SPEC bad-input)",
     b"GET / http/1.1\r\nHost: x\r\n\r\n")
case("version-extra-digit", "400 close", "invalid-request-line", "'HTTP/1.10' (SPEC bad-input: invalid version)",
     b"GET / HTTP/1.10\r\nHost: x\r\n\r\n")
case("version-missing", "400 close", "invalid-request-line", "'GET / ' with an empty version (SPEC bad-input)",
     b"GET / \r\nHost: x\r\n\r\n")
case("method-invalid-token", "400 close", "invalid-request-line", "'G@T' is not a token (SPEC bad-input: invalid token in request line)",
     b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n")
case("request-line-double-space", "400 close", "request-line-whitespace", "two spaces between method and target (SPEC bad-input: request line does not parse)",
     b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n")
case("request-line-tab", "400 close", "request-line-whitespace", "HTAB between method and target (SPEC bad-input: request line does not parse)",
     b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n")
case("expect-unknown", "417 close", "expect-unknown", "'Expect: bogus' (SPEC bad-input: 417)",
     b"GET / HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n")

# --- pipelining and garbage after a valid request ---
case("valid-then-differing-content-length", "200 400 close", "differing-content-length",
     "a valid request, then one with two Content-Length values that differ, in one write: the first answered 200, the second 400 (found by --explore: Node answers only the 400)",
     GET + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
case("pipelined-two-valid", "200 200", "valid-request", "two valid requests in one write, answered in order (control case)", GET + GET)
case("garbage-after-valid", "200 400 close", "invalid-request-line", "a valid request then garbage: the garbage gets 400 and the close (SPEC bad-input)",
     GET + b"\x00\x01garbage\r\n\r\n")
case("garbage-text-after-valid", "200 400 close", "invalid-request-line", "a valid request then 'FOO BAR' without a version (SPEC bad-input)",
     GET + b"FOO BAR\r\n\r\n")
case("bare-lf-after-valid", "200 400 close", "bare-lf", "a valid request then one whose lines end in bare LF (SPEC bad-input)",
     GET + b"GET / HTTP/1.1\nHost: x\n\n")
case("cl-te-after-valid", "200 400 close", "te-and-cl", "a valid request then a CL.TE request (SPEC bad-input: TE and CL)",
     GET + POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")

# --- added after a first run: SPEC is silent on these; the expectation is what the reference
# does, where that is safe ---
case("leading-empty-line", "200", "leading-empty-line",
     "an empty line before the request line is ignored (SPEC silent)",
     b"\r\n" + GET)
case("obs-text-in-field-value", "200", "obs-text-in-field-value",
     "a byte 0xE9 (obs-text) in a field value is opaque data (SPEC silent; control case)",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n")
case("high-bit-in-target", "400 close", "invalid-request-line",
     "a byte 0xE9 in the request target: not a URI character (SPEC bad-input: invalid token in request line)",
     b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n")
case("chunk-size-upper-hex", "200", "valid-request",
     "chunk size 'A' in upper-case hex, 10 data bytes (control case)",
     CHUNKED + b"A\r\n0123456789\r\n0\r\n\r\n")
case("te-chunked-then-cl-on-keep-alive", "200 400 close", "te-and-cl",
     "a valid chunked request, then a TE.CL request on the same connection (SPEC bad-input: TE and CL)",
     CHUNKED + HELLO_CHUNKS + POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n")
case("connection-close-pipelined", "200 close", "connection-close",
     "'Connection: close' then a pipelined request: the second is never answered (SPEC serving loop)",
     b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET)
case("http10-then-http11", "200 close", "http10-close",
     "an HTTP/1.0 request without keep-alive, then a pipelined HTTP/1.1 one: closed after the first (SPEC serving loop)",
     b"GET / HTTP/1.0\r\n\r\n" + GET)

case("cl-list-trailing-comma", "400 close", "content-length-empty-list-item",
     "'Content-Length: 5,': an empty list item is not a length (SPEC bad-input: Content-Length that is empty; SPEC silent on list items)",
     POST + b"Content-Length: 5,\r\n\r\nhello")
case("method-lower-case", "200", "method-unrecognized",
     "'get' is a valid method token, distinct from GET; the demo handler answers any method (a server that knows no 'get' may answer 501)",
     b"get / HTTP/1.1\r\nHost: x\r\n\r\n")


def main():
    names = set()
    for name, expect, rule, note, raw in CASES:
        if name in names:
            sys.exit(f"duplicate case {name}")
        names.add(name)
        header = f"expect: {expect}\nrule: {rule}\nnote: {note}\n"
        with open(os.path.join(HERE, name + ".http"), "wb") as f:
            f.write(header.encode() + b"---\n" + raw)
    print(f"wrote {len(CASES)} cases to {HERE}")


if __name__ == "__main__":
    main()
