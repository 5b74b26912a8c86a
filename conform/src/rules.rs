//! The rules a conformance case checks (SPEC.md#conformance-vectors, "Levels"): one row per
//! condition, with the sentence of RFC 9110 or RFC 9112 (or of SPEC.md, where the RFCs are
//! silent) that says what a server answers, the strict status and the others as good, and the
//! levels of the status check and of the close check. The levels are not set by hand: they
//! come from the quoted sentence's keyword ([`Quote::level`]), so a case's level is the RFC's.
//!
//! Every hostile corpus file names its rule (`rule: ID`), and every `bad-input/` case of the
//! built-in suite is built from one; their vectors carry the rule's id, cite, levels and
//! accepted statuses. This module owns the table and nothing else.

use std::fmt;

use crate::vector::{Level, ResponseExpect};

/// A sentence (or a few consecutive ones) quoted verbatim from its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Where it stands: `RFC 9112 §6.1`, `RFC 9110 §5.4` or `SPEC.md#bad-input`.
    pub source: &'static str,
    /// The words, exactly as the source has them (an elision is written `…`).
    pub text: &'static str,
}

impl fmt::Display for Quote {
    /// `RFC 9112 §6.1: "…"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: \"{}\"", self.source, self.text)
    }
}

/// The requirement keywords of BCP 14 (RFC 2119, RFC 8174) that bind: a miss is a FAIL.
const BINDING: &[&str] = &["MUST", "REQUIRED", "SHALL"];
/// The keywords that leave the choice to the implementation: a miss is NON-STRICT.
const LENIENT: &[&str] = &["SHOULD", "RECOMMENDED", "MAY", "OPTIONAL"];

/// The strongest BCP 14 keyword of `text`; see [`Quote::keyword`].
fn keyword(text: &str) -> Option<&'static str> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let find = |set: &[&'static str]| set.iter().copied().find(|k| words.contains(k));
    find(BINDING).or_else(|| find(LENIENT))
}

/// The level a sentence of the conformance contract sets: must for a binding keyword.
fn contract_level(text: &str) -> Level {
    match keyword(text) {
        Some(k) if BINDING.contains(&k) => Level::Must,
        _ => Level::Should,
    }
}

impl Quote {
    /// The strongest BCP 14 keyword of the text (upper case only, as BCP 14 has it): `MUST`
    /// (or `REQUIRED`, `SHALL`; `MUST NOT` counts as `MUST`) over `SHOULD`, `RECOMMENDED`,
    /// `MAY` or `OPTIONAL`; `None` for a sentence without one.
    pub fn keyword(&self) -> Option<&'static str> {
        keyword(self.text)
    }

    /// Whether the quote is SPEC.md#bad-input: the reference's own strictness, stated where
    /// the RFCs leave the answer to the server or say nothing. It binds the reference (the
    /// core's tests hold it to every word), not the server under test.
    pub fn is_reference_strictness(&self) -> bool {
        self.source == "SPEC.md#bad-input"
    }

    /// The level the quote sets on its own: must for a binding keyword, should for a lenient
    /// keyword or none, and should for a SPEC.md#bad-input sentence whatever its keyword.
    pub fn level(&self) -> Level {
        if self.is_reference_strictness() {
            Level::Should
        } else {
            contract_level(self.text)
        }
    }
}

/// One condition a case checks, and what a server answers to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Kebab-case, as a corpus file names it (`rule: te-and-cl`).
    pub id: &'static str,
    /// The input, in a phrase.
    pub condition: &'static str,
    /// The status the strict answer uses (the reference's).
    pub status: u16,
    /// Other statuses as good, where the RFC leaves the choice (`"413"`, `"4xx"`).
    pub accept: &'static [&'static str],
    /// The sentence that says how the server answers; it sets the status level.
    pub status_quote: Quote,
    /// The other answer the status sentence allows, in its own words, where it binds the
    /// server to one of two ("MUST either reject … or replace …"): both comply, so the strict
    /// answer is the expectation and the other one is NON-STRICT.
    pub or_else: Option<&'static str>,
    /// The sentence that says whether the connection closes after the answer; it sets the
    /// close level. `None`: the status sentence decides the close too.
    pub close_quote: Option<Quote>,
    /// The SPEC.md sentence that sets the reference's strict answer, where the RFC leaves a
    /// choice.
    pub strict: Option<Quote>,
}

impl Rule {
    /// The level of the status check: the status sentence's ([`Quote::level`]), or should
    /// when that sentence offers a choice ([`Rule::or_else`]).
    pub fn status_level(&self) -> Level {
        if self.or_else.is_some() {
            Level::Should
        } else {
            self.status_quote.level()
        }
    }

    /// The level of the close check: the close sentence's, or the status level without one.
    pub fn close_level(&self) -> Level {
        self.close_quote
            .map_or_else(|| self.status_level(), |q| q.level())
    }

    /// The sentences, for a vector's `cite`: the status sentence, then the close sentence and
    /// the strict answer's where there are.
    pub fn cite(&self) -> String {
        let mut s = self.status_quote.to_string();
        if let Some(q) = self.close_quote.filter(|q| *q != self.status_quote) {
            s.push_str(&format!(" Close: {q}"));
        }
        if let Some(q) = self.strict {
            s.push_str(&format!(" Strict: {q}"));
        }
        s
    }

    /// The expected response `status` (the corpus file's, normally the rule's own) with the
    /// rule's accepted statuses.
    pub fn expect(&self, status: u16) -> ResponseExpect {
        let mut r = ResponseExpect::status(status);
        r.accept = self.accept.iter().map(|a| a.to_string()).collect();
        r
    }
}

/// The rule named `id`.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Every rule's id, in table order, comma-separated: for an error that names the known ones.
pub fn known_ids() -> String {
    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
}

const fn q(source: &'static str, text: &'static str) -> Quote {
    Quote { source, text }
}

// RFC 9112 (HTTP/1.1).
const RFC9112_2_2_BARE_LF: Quote = q(
    "RFC 9112 §2.2",
    "Although the line terminator for the start-line and fields is the sequence CRLF, a recipient MAY recognize a single LF as a line terminator and ignore any preceding CR.",
);
const RFC9112_2_2_BARE_CR: Quote = q(
    "RFC 9112 §2.2",
    "A recipient of such a bare CR MUST consider that element to be invalid or replace each bare CR with SP before processing the element or forwarding the message.",
);
const RFC9112_2_2_EMPTY_LINE: Quote = q(
    "RFC 9112 §2.2",
    "In the interest of robustness, a server that is expecting to receive and parse a request-line SHOULD ignore at least one empty line (CRLF) received prior to the request-line.",
);
const RFC9112_2_2_WHITESPACE: Quote = q(
    "RFC 9112 §2.2",
    "A recipient that receives whitespace between the start-line and the first header field MUST either reject the message as invalid or consume each whitespace-preceded line without further processing of it (i.e., ignore the entire line, along with any subsequent lines preceded by whitespace, until a properly formed header field is received or the header section is terminated).",
);
const RFC9112_2_2_GRAMMAR: Quote = q(
    "RFC 9112 §2.2",
    "When a server listening only for HTTP request messages, or processing what appears from the start-line to be an HTTP request message, receives a sequence of octets that does not match the HTTP-message grammar aside from the robustness exceptions listed above, the server SHOULD respond with a 400 (Bad Request) response and close the connection.",
);
const RFC9112_3_WHITESPACE: Quote = q(
    "RFC 9112 §3",
    "Although the request-line grammar rule requires that each of the component elements be separated by a single SP octet, recipients MAY instead parse on whitespace-delimited word boundaries and, aside from the CRLF terminator, treat any form of whitespace as the SP separator while ignoring preceding or trailing whitespace; such whitespace includes one or more of the following octets: SP, HTAB, VT (%x0B), FF (%x0C), or bare CR.",
);
const RFC9112_3_URI_TOO_LONG: Quote = q(
    "RFC 9112 §3",
    "A server that receives a request-target longer than any URI it wishes to parse MUST respond with a 414 (URI Too Long) status code (see Section 15.5.15 of [HTTP]).",
);
const RFC9112_3_2_INVALID_LINE: Quote = q(
    "RFC 9112 §3.2",
    "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad Request) error or a 301 (Moved Permanently) redirect with the request-target properly encoded.",
);
const RFC9112_3_2_HOST: Quote = q(
    "RFC 9112 §3.2",
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host header field and to any request message that contains more than one Host header field line or a Host header field with an invalid field value.",
);
const RFC9112_3_2_2_ABSOLUTE: Quote = q(
    "RFC 9112 §3.2.2",
    "A server MUST accept the absolute-form in requests even though most HTTP/1.1 clients will only send the absolute-form to a proxy.",
);
const RFC9112_3_2_4_ASTERISK: Quote = q(
    "RFC 9112 §3.2.4",
    "The \"asterisk-form\" of request-target is only used for a server-wide OPTIONS request (Section 9.3.7 of [HTTP]).",
);
const RFC9110_9_3_7_OPTIONS_ASTERISK: Quote = q(
    "RFC 9110 §9.3.7",
    "An OPTIONS request with an asterisk (\"*\") as the request target (Section 7.1) applies to the server in general rather than to a specific resource.",
);
const RFC9112_5_1_COLON: Quote = q(
    "RFC 9112 §5.1",
    "A server MUST reject, with a response status code of 400 (Bad Request), any received request message that contains whitespace between a header field name and colon.",
);
const RFC9112_5_2_OBS_FOLD: Quote = q(
    "RFC 9112 §5.2",
    "A server that receives an obs-fold in a request message that is not within a \"message/http\" container MUST either reject the message by sending a 400 (Bad Request), preferably with a representation explaining that obsolete line folding is unacceptable, or replace each received obs-fold with one or more SP octets prior to interpreting the field value or forwarding the message downstream.",
);
const RFC9112_6_1_TE_CL: Quote = q(
    "RFC 9112 §6.1",
    "A server MAY reject a request that contains both Content-Length and Transfer-Encoding or process such a request in accordance with the Transfer-Encoding alone.",
);
const RFC9112_6_1_TE_CL_CLOSE: Quote = q(
    "RFC 9112 §6.1",
    "Regardless, the server MUST close the connection after responding to such a request to avoid the potential attacks.",
);
const RFC9112_6_1_HTTP10: Quote = q(
    "RFC 9112 §6.1",
    "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding header field MUST treat the message as if the framing is faulty, even if a Content-Length is present, and close the connection after processing the message.",
);
const RFC9112_6_1_UNKNOWN_CODING: Quote = q(
    "RFC 9112 §6.1",
    "A server that receives a request message with a transfer coding it does not understand SHOULD respond with 501 (Not Implemented).",
);
const RFC9112_6_3_NOT_FINAL: Quote = q(
    "RFC 9112 §6.3",
    "If a Transfer-Encoding header field is present in a request and the chunked transfer coding is not the final encoding, the message body length cannot be determined reliably; the server MUST respond with the 400 (Bad Request) status code and then close the connection.",
);
const RFC9112_6_3_INVALID_CL: Quote = q(
    "RFC 9112 §6.3",
    "If a message is received without Transfer-Encoding and with an invalid Content-Length header field, then the message framing is invalid and the recipient MUST treat it as an unrecoverable error, unless the field value can be successfully parsed as a comma-separated list (Section 5.6.1 of [HTTP]), all values in the list are valid, and all values in the list are the same (in which case, the message is processed with that single value used as the Content-Length field value). If the unrecoverable error is in a request message, the server MUST respond with a 400 (Bad Request) status code and then close the connection.",
);
const RFC9112_7_1_CHUNK_SIZE: Quote = q(
    "RFC 9112 §7.1",
    "The chunk-size field is a string of hex digits indicating the size of the chunk-data in octets.",
);
const RFC9112_7_1_OVERFLOW: Quote = q(
    "RFC 9112 §7.1",
    "Therefore, recipients MUST anticipate potentially large hexadecimal numerals and prevent parsing errors due to integer conversion overflows or precision loss due to integer representation.",
);
const RFC9112_7_1_1_IGNORE_EXT: Quote = q(
    "RFC 9112 §7.1.1",
    "A recipient MUST ignore unrecognized chunk extensions.",
);
const RFC9112_7_1_1_EXT_LIMIT: Quote = q(
    "RFC 9112 §7.1.1",
    "A server ought to limit the total length of chunk extensions received in a request to an amount reasonable for the services provided, in the same way that it applies length limitations and timeouts for other parts of a message, and generate an appropriate 4xx (Client Error) response if that amount is exceeded.",
);
const RFC9112_9_3_PERSISTENT: Quote = q(
    "RFC 9112 §9.3",
    "HTTP implementations SHOULD support persistent connections.",
);
const RFC9112_9_3_HTTP10: Quote = q(
    "RFC 9112 §9.3",
    "If the received protocol is HTTP/1.0, the \"keep-alive\" connection option is present, either the recipient is not a proxy or the message is a response, and the recipient wishes to honor the HTTP/1.0 \"keep-alive\" mechanism, the connection will persist after the current response",
);
const RFC9112_9_6_CLOSE: Quote = q(
    "RFC 9112 §9.6",
    "A server that receives a \"close\" connection option MUST initiate closure of the connection (see below) after it sends the final response to the request that contained the \"close\" connection option.",
);

// RFC 9110 (HTTP Semantics).
const RFC9110_5_4_LIMITS: Quote = q(
    "RFC 9110 §5.4",
    "A server that receives a request header field line, field value, or set of fields larger than it wishes to process MUST respond with an appropriate 4xx (Client Error) status code.",
);
const RFC9110_5_5_OBS_TEXT: Quote = q(
    "RFC 9110 §5.5",
    "A recipient SHOULD treat other allowed octets in field content (i.e., obs-text) as opaque data.",
);
const RFC9110_5_5_NUL: Quote = q(
    "RFC 9110 §5.5",
    "Field values containing CR, LF, or NUL characters are invalid and dangerous, due to the varying ways that implementations might parse and interpret those characters; a recipient of CR, LF, or NUL within a field value MUST either reject the message or replace each of those characters with SP before further processing or forwarding of that message.",
);
const RFC9110_5_5_CTL: Quote = q(
    "RFC 9110 §5.5",
    "Field values containing other CTL characters are also invalid; however, recipients MAY retain such characters for the sake of robustness when they appear within a safe context (e.g., an application-specific quoted string that will not be processed by any downstream HTTP parser).",
);
const RFC9110_5_6_1_2_EMPTY: Quote = q(
    "RFC 9110 §5.6.1.2",
    "A recipient MUST parse and ignore a reasonable number of empty list elements: enough to handle common mistakes by senders that merge values, but not so much that they could be used as a denial-of-service mechanism.",
);
const RFC9110_6_2_MINOR: Quote = q(
    "RFC 9110 §6.2",
    "A recipient that receives a message with a major version number that it implements and a minor version number higher than what it implements SHOULD process the message as if it were in the highest minor version within that major version to which the recipient is conformant.",
);
const RFC9110_6_2_505: Quote = q(
    "RFC 9110 §6.2",
    "A server can send a 505 (HTTP Version Not Supported) response if it wishes, for any reason, to refuse service of the client's major protocol version.",
);
const RFC9110_7_4_MISDIRECTED: Quote = q(
    "RFC 9110 §7.4",
    "Once a request is received by a server and parsed sufficiently to determine its target URI, the server decides whether to process the request itself, forward the request to another server, redirect the client to a different resource, respond with an error, or drop the connection.",
);
const RFC9110_8_6_LARGE: Quote = q(
    "RFC 9110 §8.6",
    "Since there is no predefined limit to the length of content, a recipient MUST anticipate potentially large decimal numerals and prevent parsing errors due to integer conversion overflows or precision loss due to integer conversion (Section 17.5).",
);
const RFC9110_8_6_SAME: Quote = q(
    "RFC 9110 §8.6",
    "… a recipient of a Content-Length header field value consisting of the same decimal value repeated as a comma-separated list (e.g, \"Content-Length: 42, 42\") MAY either reject the message as invalid or replace that invalid field value with a single instance of the decimal value, since this likely indicates that a duplicate was generated or combined by an upstream message processor.",
);
const RFC9110_9_1_METHOD: Quote = q(
    "RFC 9110 §9.1",
    "An origin server that receives a request method that is unrecognized or not implemented SHOULD respond with the 501 (Not Implemented) status code.",
);
const RFC9110_10_1_1_EXPECT: Quote = q(
    "RFC 9110 §10.1.1",
    "A server that receives an Expect field value containing a member other than 100-continue MAY respond with a 417 (Expectation Failed) status code to indicate that the unexpected expectation cannot be met.",
);

// SPEC.md: the conformance contract, and the reference's own strictness.
const ENDPOINT_200: Quote = q(
    "SPEC.md#conformance-endpoints",
    "A request for any other path MUST be answered with 200 and a short text body after the server has read the whole request body.",
);
const SERVING_CLOSE: Quote = q(
    "SPEC.md#serving-loop",
    "The server MUST close the connection after the response when the request did not keep it alive, when the response is delimited by the close, when a write to the stream failed, when the request body failed, or when the server is shutting down.",
);
const REJECT_CLOSE: Quote = q(
    "SPEC.md#bad-input",
    "A rejected request head MUST NOT reach a handler, and the server MUST send its rejection and then close the connection.",
);
const BODY_CLOSE: Quote = q(
    "SPEC.md#bad-input",
    "A chunk size that is not hexadecimal, overflows 64 bits, or a chunk whose data is not followed by CRLF MUST make the body fail; the server MUST then close the connection.",
);
const BODY_FAILS: Quote = q(
    "SPEC.md#bad-input",
    "A chunk-size line with a bare CR or LF, a control byte in a chunk extension or a trailer field, an obs-fold or an empty field name in the trailer section, a chunk-size line or trailer section over 4096 bytes, or a body cut short by the end of stream MUST also make the body fail.",
);
const STRICT_MALFORMED: Quote = q(
    "SPEC.md#bad-input",
    "A request line or header field that does not parse, an obs-fold, an invalid field name or value, a version other than HTTP/1.0 or HTTP/1.1, or an asterisk-form target with a method other than OPTIONS MUST be answered with 400.",
);
const STRICT_BYTES: Quote = q(
    "SPEC.md#bad-input",
    "A request head containing a bare CR, a bare LF, or a NUL byte MUST be answered with 400.",
);
const STRICT_FRAMING: Quote = q(
    "SPEC.md#bad-input",
    "A request with both Transfer-Encoding and Content-Length, or with Content-Length values that differ or are not decimal digits, MUST be answered with 400.",
);
const STRICT_TE: Quote = q(
    "SPEC.md#bad-input",
    "A Transfer-Encoding field in an HTTP/1.0 request, an empty or malformed Transfer-Encoding, or chunked applied more than once MUST be answered with 400.",
);
const STRICT_CODING: Quote = q(
    "SPEC.md#bad-input",
    "A transfer coding other than chunked before a final chunked MUST be answered with 501.",
);
const STRICT_EXPECT: Quote = q(
    "SPEC.md#bad-input",
    "An Expect field other than 100-continue MUST be answered with 417.",
);
const STRICT_LISTS: Quote = q(
    "SPEC.md#bad-input",
    "Comma-separated lists are split and their items trimmed: `Content-Length: 5, 5` is accepted, `Content-Length: 5, 6` is not.",
);
const STRICT_CHUNK_WHITESPACE: Quote = q(
    "SPEC.md#bad-input",
    "Whitespace (SP or HTAB) is allowed between the chunk size and the CR or the `;` of an extension.",
);

/// A rule with a status sentence and nothing else: it sets the close level too.
const fn rule(id: &'static str, condition: &'static str, status: u16, quote: Quote) -> Rule {
    Rule {
        id,
        condition,
        status,
        accept: &[],
        status_quote: quote,
        or_else: None,
        close_quote: None,
        strict: None,
    }
}

impl Rule {
    const fn accept(mut self, accept: &'static [&'static str]) -> Rule {
        self.accept = accept;
        self
    }
    const fn or_else(mut self, words: &'static str) -> Rule {
        self.or_else = Some(words);
        self
    }
    const fn close(mut self, quote: Quote) -> Rule {
        self.close_quote = Some(quote);
        self
    }
    const fn strict(mut self, quote: Quote) -> Rule {
        self.strict = Some(quote);
        self
    }
}

/// Every rule. A request the demo handler answers is a control case: its rule's status is 200.
pub static RULES: &[Rule] = &[
    // Control cases: valid requests, and leniencies the RFCs ask for.
    rule(
        "valid-request",
        "a valid request, or valid requests pipelined",
        200,
        ENDPOINT_200,
    )
    .close(RFC9112_9_3_PERSISTENT),
    // No keyword: a server need not answer a server-wide OPTIONS with 200 (`*` is no path of
    // the conformance contract), so a refusal is NON-STRICT.
    rule(
        "options-asterisk",
        "a server-wide OPTIONS request (asterisk-form)",
        200,
        RFC9110_9_3_7_OPTIONS_ASTERISK,
    )
    .close(RFC9112_9_3_PERSISTENT),
    rule(
        "absolute-form",
        "an absolute-form target whose host is the Host field's",
        200,
        RFC9112_3_2_2_ABSOLUTE,
    )
    .close(RFC9112_9_3_PERSISTENT),
    rule(
        "absolute-form-host-mismatch",
        "an absolute-form target whose host differs from the Host field",
        200,
        RFC9110_7_4_MISDIRECTED,
    ),
    rule(
        "chunk-ext-unrecognized",
        "chunk extensions the server does not know",
        200,
        RFC9112_7_1_1_IGNORE_EXT,
    )
    .close(RFC9112_9_3_PERSISTENT),
    rule(
        "chunk-size-leading-zeros",
        "a chunk size with many leading zeros and a small value",
        200,
        RFC9112_7_1_CHUNK_SIZE,
    ),
    rule(
        "chunk-size-trailing-whitespace",
        "whitespace between the chunk size and its CRLF",
        200,
        STRICT_CHUNK_WHITESPACE,
    ),
    rule(
        "content-length-same-values",
        "Content-Length values that are all the same decimal value",
        200,
        RFC9110_8_6_SAME,
    )
    .strict(STRICT_LISTS),
    rule(
        "empty-list-element",
        "an empty element in the Transfer-Encoding list",
        200,
        RFC9110_5_6_1_2_EMPTY,
    )
    .close(RFC9112_9_3_PERSISTENT),
    rule(
        "leading-empty-line",
        "an empty line before the request line",
        200,
        RFC9112_2_2_EMPTY_LINE,
    ),
    rule(
        "method-unrecognized",
        "a method token the server does not know",
        200,
        RFC9110_9_1_METHOD,
    )
    .accept(&["501"])
    .strict(ENDPOINT_200),
    rule(
        "obs-text-in-field-value",
        "a byte 0x80 to 0xFF (obs-text) in a field value",
        200,
        RFC9110_5_5_OBS_TEXT,
    ),
    // Persistence.
    rule(
        "connection-close",
        "a request with Connection: close, maybe with another after it",
        200,
        ENDPOINT_200,
    )
    .close(RFC9112_9_6_CLOSE),
    rule(
        "http10-close",
        "an HTTP/1.0 request without keep-alive, maybe with another after it",
        200,
        ENDPOINT_200,
    )
    .close(SERVING_CLOSE),
    rule(
        "http10-keep-alive",
        "an HTTP/1.0 request with Connection: keep-alive",
        200,
        ENDPOINT_200,
    )
    .close(RFC9112_9_3_HTTP10),
    // Request line.
    rule(
        "invalid-request-line",
        "a request line that does not match the grammar: a byte outside the target's, a bad method token, a bad or missing version, garbage",
        400,
        RFC9112_3_2_INVALID_LINE,
    )
    .accept(&["301"])
    .close(RFC9112_2_2_GRAMMAR)
    .strict(STRICT_MALFORMED),
    rule(
        "request-line-whitespace",
        "whitespace other than one SP between the parts of the request line (HTAB, two SP)",
        400,
        RFC9112_3_WHITESPACE,
    )
    .accept(&["301"])
    .close(RFC9112_2_2_GRAMMAR)
    .strict(STRICT_MALFORMED),
    rule(
        "request-target-too-long",
        "a request line longer than the server parses",
        414,
        RFC9112_3_URI_TOO_LONG,
    )
    .close(REJECT_CLOSE),
    rule(
        "asterisk-form-not-options",
        "an asterisk-form target with a method other than OPTIONS",
        400,
        RFC9112_3_2_4_ASTERISK,
    )
    .close(REJECT_CLOSE)
    .strict(STRICT_MALFORMED),
    rule(
        "version-minor-higher",
        "HTTP/1.2: a minor version higher than the server's",
        400,
        RFC9110_6_2_MINOR,
    )
    .close(REJECT_CLOSE)
    .strict(STRICT_MALFORMED),
    rule(
        "version-unsupported",
        "a major version other than 1",
        400,
        RFC9110_6_2_505,
    )
    .close(REJECT_CLOSE)
    .strict(STRICT_MALFORMED),
    // Line ends and forbidden bytes.
    rule("bare-lf", "a line of the head (or a trailer field) ended by a bare LF", 400, RFC9112_2_2_BARE_LF)
        .close(REJECT_CLOSE)
        .strict(STRICT_BYTES),
    rule("bare-cr", "a bare CR in the head", 400, RFC9112_2_2_BARE_CR)
        .or_else("replace each bare CR with SP")
        .close(REJECT_CLOSE)
        .strict(STRICT_BYTES),
    rule(
        "nul-in-field-value",
        "a NUL byte in a field value",
        400,
        RFC9110_5_5_NUL,
    )
    .or_else("replace each of those characters with SP")
    .close(REJECT_CLOSE)
    .strict(STRICT_BYTES),
    // Header fields.
    rule(
        "invalid-field-line",
        "a field line that does not match the grammar: a bad or empty name, no colon",
        400,
        RFC9112_2_2_GRAMMAR,
    )
    .strict(STRICT_MALFORMED),
    rule(
        "ctl-in-field-value",
        "a control byte other than NUL, CR and LF in a field value",
        400,
        RFC9110_5_5_CTL,
    )
    .close(RFC9112_2_2_GRAMMAR)
    .strict(STRICT_MALFORMED),
    rule(
        "space-before-colon",
        "whitespace between a field name and the colon",
        400,
        RFC9112_5_1_COLON,
    )
    .close(REJECT_CLOSE),
    rule("obs-fold", "an obs-fold line", 400, RFC9112_5_2_OBS_FOLD)
        .or_else("replace each received obs-fold with one or more SP octets")
        .close(REJECT_CLOSE)
        .strict(STRICT_MALFORMED),
    rule(
        "whitespace-before-first-field",
        "whitespace before the first field line, with the fields needed after it",
        400,
        RFC9112_2_2_WHITESPACE,
    )
    .or_else("consume each whitespace-preceded line without further processing of it")
    .close(REJECT_CLOSE)
    .strict(STRICT_MALFORMED),
    rule(
        "host-missing-or-duplicate",
        "an HTTP/1.1 request without a Host field, or any request with two",
        400,
        RFC9112_3_2_HOST,
    )
    .close(REJECT_CLOSE),
    rule(
        "header-section-too-long",
        "a header section larger than the server processes (bytes or fields)",
        431,
        RFC9110_5_4_LIMITS,
    )
    .accept(&["4xx"])
    // The MUST binds a server that refuses; one that processes it complies too.
    .or_else("larger than it wishes to process")
    .close(REJECT_CLOSE),
    rule(
        "expect-unknown",
        "an Expect field other than 100-continue",
        417,
        RFC9110_10_1_1_EXPECT,
    )
    .close(REJECT_CLOSE)
    .strict(STRICT_EXPECT),
    // Framing.
    rule(
        "te-and-cl",
        "both Transfer-Encoding and Content-Length",
        400,
        RFC9112_6_1_TE_CL,
    )
    .close(RFC9112_6_1_TE_CL_CLOSE)
    .strict(STRICT_FRAMING),
    rule(
        "te-in-http10",
        "Transfer-Encoding in an HTTP/1.0 request",
        400,
        RFC9112_6_1_HTTP10,
    )
    .or_else("after processing the message")
    .close(RFC9112_6_1_HTTP10)
    .strict(STRICT_TE),
    rule(
        "te-final-not-chunked",
        "a Transfer-Encoding whose final coding is not chunked",
        400,
        RFC9112_6_3_NOT_FINAL,
    ),
    rule(
        "te-unknown-coding",
        "a transfer coding the server does not implement before a final chunked",
        501,
        RFC9112_6_1_UNKNOWN_CODING,
    )
    .close(REJECT_CLOSE)
    .strict(STRICT_CODING),
    rule(
        "te-chunked-twice",
        "chunked applied twice",
        400,
        RFC9112_6_1_UNKNOWN_CODING,
    )
    .accept(&["501"])
    .close(REJECT_CLOSE)
    .strict(STRICT_TE),
    rule(
        "invalid-content-length",
        "a Content-Length that is not a decimal number",
        400,
        RFC9112_6_3_INVALID_CL,
    ),
    rule(
        "differing-content-length",
        "Content-Length values that differ",
        400,
        RFC9112_6_3_INVALID_CL,
    ),
    rule(
        "content-length-empty-list-item",
        "a Content-Length list with an empty item",
        400,
        RFC9112_6_3_INVALID_CL,
    )
    .or_else("the message is processed with that single value used as the Content-Length field value")
    .strict(STRICT_FRAMING),
    rule(
        "content-length-too-large",
        "a Content-Length over 2^64 - 1",
        400,
        RFC9110_8_6_LARGE,
    )
    .accept(&["413"])
    .close(REJECT_CLOSE),
    // Chunked bodies.
    rule(
        "chunked-invalid",
        "a chunked body that does not match the grammar: a chunk size that is not hexadecimal, a bad chunk line, data not followed by CRLF, a bad trailer",
        400,
        RFC9112_2_2_GRAMMAR,
    )
    .strict(BODY_CLOSE),
    rule(
        "chunk-size-too-large",
        "a chunk size over 2^64 - 1",
        400,
        RFC9112_7_1_OVERFLOW,
    )
    .accept(&["413"])
    .close(BODY_CLOSE),
    rule(
        "chunk-ext-too-long",
        "chunk extensions longer than the server takes",
        400,
        RFC9112_7_1_1_EXT_LIMIT,
    )
    .accept(&["4xx"])
    .close(BODY_CLOSE)
    .strict(BODY_FAILS),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Case, Suite};
    use crate::vector::{Step, Vector};
    use std::collections::BTreeMap;

    const SPEC: &str = include_str!("../../SPEC.md");

    fn rule_of(v: &Vector) -> Option<&'static Rule> {
        (!v.rule.is_empty()).then(|| find(&v.rule).expect("a known rule"))
    }

    /// The last `expect_responses` step of a vector: responses, close, close level.
    fn last_expect(v: &Vector) -> (&Option<Vec<ResponseExpect>>, bool, Option<Level>) {
        v.steps
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::ExpectResponses {
                    responses,
                    close,
                    close_level,
                    ..
                } => Some((responses, *close, *close_level)),
                _ => None,
            })
            .expect("an expect_responses step")
    }

    fn vectors() -> Vec<Vector> {
        Suite::all()
            .cases()
            .iter()
            .filter_map(|c| match c {
                Case::Bytes(v) => Some(v.clone()),
                Case::Memory => None,
            })
            .collect()
    }

    #[test]
    fn ids_are_unique_kebab_case_and_every_rule_is_used() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "{} twice", r.id);
            assert!(
                !r.id.is_empty()
                    && r.id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                r.id
            );
            assert!((100..600).contains(&r.status), "{}", r.id);
            for a in r.accept {
                assert!(
                    a.len() == 3 && (a.ends_with("xx") || a.parse::<u16>().is_ok()),
                    "{}: accept {a:?}",
                    r.id
                );
            }
        }
        let used: Vec<String> = vectors().into_iter().map(|v| v.rule).collect();
        for r in RULES {
            assert!(
                used.iter().any(|u| u == r.id),
                "no case names rule {}",
                r.id
            );
        }
    }

    #[test]
    fn levels_come_from_the_quoted_keyword() {
        for r in RULES {
            let k = r.status_quote.keyword();
            match r.or_else {
                // "MUST either … or …": both answers comply.
                Some(words) => {
                    assert!(
                        r.status_quote.text.contains(words),
                        "{}: {words:?} is not the quote's",
                        r.id
                    );
                    assert_eq!(k, Some("MUST"), "{}: a choice only softens a MUST", r.id);
                    assert_eq!(r.status_level(), Level::Should, "{}", r.id);
                }
                None if r.status_quote.is_reference_strictness() => {
                    assert_eq!(r.status_level(), Level::Should, "{}", r.id)
                }
                None => match k {
                    Some("MUST") => assert_eq!(r.status_level(), Level::Must, "{}", r.id),
                    Some("SHOULD" | "MAY" | "RECOMMENDED") | None => {
                        assert_eq!(r.status_level(), Level::Should, "{}", r.id)
                    }
                    Some(other) => panic!("{}: keyword {other}", r.id),
                },
            }
            match r.close_quote {
                Some(c) if c.keyword() == Some("MUST") && !c.is_reference_strictness() => {
                    assert_eq!(r.close_level(), Level::Must, "{}", r.id)
                }
                Some(_) => assert_eq!(r.close_level(), Level::Should, "{}", r.id),
                None => assert_eq!(r.close_level(), r.status_level(), "{}", r.id),
            }
        }
        let q = |text| Quote {
            source: "RFC 9112 §0",
            text,
        };
        assert_eq!(q("A server MUST NOT do it.").level(), Level::Must);
        assert_eq!(q("It is RECOMMENDED that …").level(), Level::Should);
        assert_eq!(q("A server MAY do it, a client MUST.").level(), Level::Must);
        assert_eq!(q("A server ought to do it.").keyword(), None);
        assert_eq!(q("It must be so, in lower case.").level(), Level::Should);
    }

    #[test]
    fn the_issue_s_statuses_and_levels() {
        let r = |id| find(id).unwrap();
        let summary = |id| {
            let r = r(id);
            (r.status, r.accept, r.status_level(), r.close_level())
        };
        use Level::{Must, Should};
        // RFC 9112 §3: MUST 414.
        assert_eq!(
            summary("request-target-too-long"),
            (414, &[][..], Must, Should)
        );
        // RFC 9110 §5.4: an appropriate 4xx when the server refuses; processing complies.
        assert_eq!(
            summary("header-section-too-long"),
            (431, &["4xx"][..], Should, Should)
        );
        assert_eq!(
            summary("chunk-size-too-large"),
            (400, &["413"][..], Must, Should)
        );
        // RFC 9112 §6.1 and §6.3 require the close.
        assert_eq!(summary("te-and-cl"), (400, &[][..], Should, Must));
        assert_eq!(summary("te-in-http10"), (400, &[][..], Should, Must));
        assert_eq!(
            summary("invalid-content-length"),
            (400, &[][..], Must, Must)
        );
        assert_eq!(summary("te-final-not-chunked"), (400, &[][..], Must, Must));
        // "MUST either reject … or replace …": the strict 400, the other answer NON-STRICT.
        assert_eq!(summary("obs-fold"), (400, &[][..], Should, Should));
        assert_eq!(
            summary("nul-in-field-value"),
            (400, &[][..], Should, Should)
        );
        assert_eq!(summary("bare-cr"), (400, &[][..], Should, Should));
        // RFC 9112 §3: a recipient may parse on whitespace.
        assert_eq!(summary("request-line-whitespace").2, Should);
        // Elsewhere the close after a rejection is the reference's own strictness.
        assert_eq!(
            summary("host-missing-or-duplicate"),
            (400, &[][..], Must, Should)
        );
    }

    #[test]
    fn every_case_carries_a_cite_and_a_rule_names_one_level_everywhere() {
        let mut by_rule: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for v in vectors() {
            assert!(!v.cite.is_empty(), "{} has no cite", v.name);
            let Some(rule) = rule_of(&v) else {
                assert!(
                    !v.name.starts_with("hostile/") && !v.name.starts_with("bad-input/"),
                    "{} names no rule",
                    v.name
                );
                continue;
            };
            by_rule.entry(rule.id).or_default().push(v.name.clone());
            assert_eq!(v.cite, rule.cite(), "{}", v.name);
            assert_eq!(v.level, rule.status_level(), "{}", v.name);
            let (responses, close, close_level) = last_expect(&v);
            assert_eq!(close_level, Some(rule.close_level()), "{}", v.name);
            let Some(responses) = responses else {
                assert!(
                    close,
                    "{}: no responses and no close checks nothing",
                    v.name
                );
                continue;
            };
            // The rule applies to the faulty response: the last one that is not a 200, or the
            // last one of a control case; the others are exact.
            let faulty = responses
                .iter()
                .rposition(|r| r.status != 200)
                .unwrap_or(responses.len() - 1);
            for (i, r) in responses.iter().enumerate() {
                if i == faulty {
                    assert!(
                        r.status == rule.status || rule.expect(rule.status).allows(r.status),
                        "{}: status {} is not rule {}'s {} or one it accepts",
                        v.name,
                        r.status,
                        rule.id,
                        rule.status
                    );
                    assert_eq!(r.accept, rule.expect(r.status).accept, "{}", v.name);
                } else {
                    assert_eq!((r.status, r.accept.len()), (200, 0), "{}", v.name);
                }
            }
        }
        // The conditions the issue names share a rule, so a level.
        let names = |id: &str| by_rule.get(id).cloned().unwrap_or_default();
        for (id, cases) in [
            (
                "request-line-whitespace",
                &[
                    "hostile/request-line-tab",
                    "hostile/request-line-double-space",
                ][..],
            ),
            (
                "header-section-too-long",
                &[
                    "bad-input/head-too-large",
                    "hostile/header-section-too-long",
                    "hostile/too-many-fields",
                ][..],
            ),
            (
                "request-target-too-long",
                &["hostile/request-line-too-long"][..],
            ),
            (
                "chunk-size-too-large",
                &[
                    "hostile/chunk-size-overflow",
                    "hostile/chunk-size-overflow-ffff",
                ][..],
            ),
        ] {
            for case in cases {
                assert!(names(id).iter().any(|n| n == case), "{case} under {id}");
            }
        }
    }

    #[test]
    fn every_case_outside_the_rules_cites_a_spec_sentence_with_its_level() {
        for v in vectors().into_iter().filter(|v| v.rule.is_empty()) {
            let (source, text) = split_cite(&v.cite).unwrap_or_else(|| panic!("{}", v.name));
            assert!(source.starts_with("SPEC.md#"), "{}", v.name);
            assert_eq!(contract_level(&text), v.level, "{}: {}", v.name, v.cite);
        }
    }

    /// `SOURCE: "TEXT"` → (SOURCE, TEXT), for a cite of one quote.
    fn split_cite(cite: &str) -> Option<(String, String)> {
        let (source, rest) = cite.split_once(": \"")?;
        Some((source.to_string(), rest.strip_suffix('"')?.to_string()))
    }

    /// SPEC.md's text of `section` (from its heading to the next `## `), whitespace collapsed.
    fn spec_section(section: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in SPEC.lines() {
            if let Some(title) = line.strip_prefix("## ") {
                inside = slug(title) == section;
                continue;
            }
            if inside {
                out.push_str(line);
                out.push(' ');
            }
        }
        collapse(&out)
    }

    fn slug(title: &str) -> String {
        title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                'a'..='z' | '0'..='9' | '-' => Some(c),
                ' ' => Some('-'),
                _ => None,
            })
            .collect()
    }

    fn collapse(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn spec_quotes_are_verbatim() {
        let mut quotes: Vec<(String, String)> = Vec::new();
        for r in RULES {
            for q in [Some(r.status_quote), r.close_quote, r.strict]
                .into_iter()
                .flatten()
            {
                quotes.push((q.source.into(), q.text.into()));
            }
        }
        for v in vectors().into_iter().filter(|v| v.rule.is_empty()) {
            quotes.push(split_cite(&v.cite).unwrap());
        }
        quotes.push(split_cite(crate::memory::CITE).unwrap());
        for (source, text) in quotes {
            let Some(section) = source.strip_prefix("SPEC.md#") else {
                assert!(source.starts_with("RFC 911"), "{source}");
                continue;
            };
            assert!(
                spec_section(section).contains(&collapse(&text)),
                "not in SPEC.md#{section}: {text:?}"
            );
        }
    }
}
