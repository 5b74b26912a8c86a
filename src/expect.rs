//! `Expect: 100-continue` as one state machine (SPEC.md#serving-loop, "Expect:
//! 100-continue").
//!
//! It owns the per-request [`Continue`] state and its transitions, nothing else: it never
//! touches the stream, the write buffer or the body. The write side holds the state; sending
//! the interim response is the body reader's, cancelling it the response writer's, the
//! hijack's and the serving loop's.

/// Where a request's `100 Continue` is. Any pair not matched in [`Continue::send`] or
/// [`Continue::cancel`] leaves the state as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Continue {
    /// The request did not ask for `100 Continue`, or has no body.
    NotExpected,
    /// The request asked for it and has a body; none was sent yet, and one still may be.
    Expected,
    /// `100 Continue` went out: the client sends its body.
    Sent,
    /// Expected, but a status was set, the handler returned or a hijack began before it was
    /// sent: it never will be, so the client never sends the body.
    Cancelled,
}

impl Continue {
    /// The state a request starts in.
    pub(crate) fn for_request(expect_continue: bool, has_body: bool) -> Continue {
        if expect_continue && has_body {
            Continue::Expected
        } else {
            Continue::NotExpected
        }
    }

    /// Expected → Sent. Returns whether `100 Continue` is to be written now.
    pub(crate) fn send(&mut self) -> bool {
        if *self == Continue::Expected {
            *self = Continue::Sent;
            return true;
        }
        false
    }

    /// Expected → Cancelled: no `100 Continue` from now on.
    pub(crate) fn cancel(&mut self) {
        if *self == Continue::Expected {
            *self = Continue::Cancelled;
        }
    }

    /// **Continue unsent**: the request expected `100 Continue` and none was sent, so its
    /// body never came.
    pub(crate) fn unsent(self) -> bool {
        matches!(self, Continue::Expected | Continue::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::Continue;

    #[test]
    fn continue_is_sent_at_most_once_and_never_after_a_cancel() {
        let mut c = Continue::for_request(true, true);
        assert!(c.unsent());
        assert!(c.send());
        assert!(!c.send());
        c.cancel();
        assert_eq!(c, Continue::Sent);
        assert!(!c.unsent());

        let mut c = Continue::for_request(true, true);
        c.cancel();
        assert!(!c.send());
        assert!(c.unsent());

        let mut c = Continue::for_request(true, false);
        assert!(!c.send());
        c.cancel();
        assert_eq!(c, Continue::NotExpected);
        assert!(!c.unsent());
    }
}
