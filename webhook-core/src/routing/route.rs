//! Subject/type router: exact and wildcard patterns, compiled once, matched without allocating.
//!
//! Used for inbound dispatch (ConnectSecure `subject`, Sysdig `type`) and outbound filtering
//! (Sysdig "Data to Send", ConnectSecure event sets). A pattern is literal text where `*` matches
//! any run of characters (including none, and including dots): `policy.*`, `*.created`,
//! `a.*.b`, `*`. Case-insensitive matching folds ASCII letters only.

use std::fmt;

/// Errors building a [`Router`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A pattern was empty.
    #[error("route {index}: empty pattern")]
    EmptyPattern {
        /// Position of the route in the builder.
        index: usize,
    },
}

/// Whether one subject goes to the first matching route or to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchMode {
    /// Only the first matching route (in insertion order).
    #[default]
    First,
    /// Every matching route, in insertion order.
    All,
}

/// A compiled pattern: literal pieces separated by `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `prefix*middle*...*suffix`; `anchored_start` / `anchored_end` tell whether the pattern
    /// starts / ends with a literal.
    Glob {
        pieces: Box<[Box<str>]>,
        anchored_start: bool,
        anchored_end: bool,
        min_len: usize,
    },
}

fn eq_bytes(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn find(hay: &[u8], needle: &[u8], ci: bool) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| eq_bytes(w, needle, ci))
}

impl Pattern {
    fn compile(src: &str) -> Self {
        if !src.contains('*') {
            return Self::Exact(src.into());
        }
        let pieces: Vec<Box<str>> = src
            .split('*')
            .filter(|p| !p.is_empty())
            .map(Into::into)
            .collect();
        if pieces.is_empty() {
            return Self::Any;
        }
        let min_len = pieces.iter().map(|p| p.len()).sum();
        Self::Glob {
            pieces: pieces.into_boxed_slice(),
            anchored_start: !src.starts_with('*'),
            anchored_end: !src.ends_with('*'),
            min_len,
        }
    }

    fn matches(&self, subject: &str, ci: bool) -> bool {
        let s = subject.as_bytes();
        match self {
            Self::Any => true,
            Self::Exact(p) => p.len() == s.len() && eq_bytes(p.as_bytes(), s, ci),
            Self::Glob {
                pieces,
                anchored_start,
                anchored_end,
                min_len,
            } => {
                if s.len() < *min_len {
                    return false;
                }
                let mut rest = s;
                let mut middle: &[Box<str>] = pieces;
                if *anchored_start {
                    let Some((first, tail)) = middle.split_first() else {
                        return true;
                    };
                    let f = first.as_bytes();
                    if rest.len() < f.len() || !eq_bytes(&rest[..f.len()], f, ci) {
                        return false;
                    }
                    rest = &rest[f.len()..];
                    middle = tail;
                }
                let mut last: Option<&[u8]> = None;
                if *anchored_end {
                    let Some((l, head)) = middle.split_last() else {
                        // The only piece was the anchored start and the pattern has no `*` after
                        // it; unreachable for a Glob, treat as exact remainder.
                        return rest.is_empty();
                    };
                    last = Some(l.as_bytes());
                    middle = head;
                }
                for piece in middle {
                    let p = piece.as_bytes();
                    match find(rest, p, ci) {
                        Some(at) => rest = &rest[at + p.len()..],
                        None => return false,
                    }
                }
                match last {
                    Some(l) => {
                        rest.len() >= l.len() && eq_bytes(&rest[rest.len() - l.len()..], l, ci)
                    }
                    None => true,
                }
            }
        }
    }
}

/// Builder for [`Router`]; [`RouterBuilder::build`] reports the first invalid pattern.
#[derive(Debug, Clone)]
#[must_use]
pub struct RouterBuilder<T> {
    routes: Vec<(String, T)>,
    mode: MatchMode,
    case_insensitive: bool,
    fallback: Option<T>,
}

impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            mode: MatchMode::First,
            case_insensitive: false,
            fallback: None,
        }
    }
}

impl<T> RouterBuilder<T> {
    /// Adds a route; earlier routes win in [`MatchMode::First`].
    pub fn route(mut self, pattern: impl Into<String>, target: T) -> Self {
        self.routes.push((pattern.into(), target));
        self
    }

    /// First-match (default) or all-match.
    pub fn mode(mut self, mode: MatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// ASCII case-insensitive matching (default off).
    pub fn case_insensitive(mut self, on: bool) -> Self {
        self.case_insensitive = on;
        self
    }

    /// Target used when no route matches.
    pub fn fallback(mut self, target: T) -> Self {
        self.fallback = Some(target);
        self
    }

    /// Compiles the router.
    ///
    /// # Errors
    /// [`RouteError::EmptyPattern`] for an empty pattern.
    pub fn build(self) -> Result<Router<T>, RouteError> {
        let mut patterns = Vec::with_capacity(self.routes.len());
        let mut targets = Vec::with_capacity(self.routes.len());
        for (index, (src, target)) in self.routes.into_iter().enumerate() {
            if src.is_empty() {
                return Err(RouteError::EmptyPattern { index });
            }
            patterns.push(Pattern::compile(&src));
            targets.push(target);
        }
        Ok(Router {
            patterns,
            targets,
            mode: self.mode,
            case_insensitive: self.case_insensitive,
            fallback: self.fallback,
        })
    }
}

/// An immutable, compiled router over targets `T`.
///
/// Used for inbound dispatch (ConnectSecure `subject`, Sysdig `type`) and outbound filtering
/// (Sysdig "Data to Send", ConnectSecure event sets). A pattern is literal text where `*` matches
/// any run of characters (including none, and including dots): `policy.*`, `*.created`,
/// `a.*.b`, `*`. Case-insensitive matching folds ASCII letters only.
///
/// ```
/// use webhook_core::{MatchMode, Router};
/// let router = Router::builder()
///     .route("policy.*", "policies")
///     .route("*.created", "creations")
///     .route("*", "audit")
///     .mode(MatchMode::All)
///     .build()?;
/// let hits: Vec<_> = router.matches("policy.created").copied().collect();
/// assert_eq!(hits, ["policies", "creations", "audit"]);
/// assert_eq!(router.first("asset.deleted"), Some(&"audit"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Router<T> {
    patterns: Vec<Pattern>,
    targets: Vec<T>,
    mode: MatchMode,
    case_insensitive: bool,
    fallback: Option<T>,
}

impl<T: fmt::Debug> fmt::Debug for Router<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.patterns.len())
            .field("mode", &self.mode)
            .field("case_insensitive", &self.case_insensitive)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl<T> Router<T> {
    /// Starts a builder.
    pub fn builder() -> RouterBuilder<T> {
        RouterBuilder::default()
    }

    /// Number of routes (fallback excluded).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// `true` without routes.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The first matching target, else the fallback.
    pub fn first(&self, subject: &str) -> Option<&T> {
        self.patterns
            .iter()
            .position(|p| p.matches(subject, self.case_insensitive))
            .and_then(|i| self.targets.get(i))
            .or(self.fallback.as_ref())
    }

    /// `true` if some route (not the fallback) matches: outbound filtering.
    ///
    /// ```
    /// let filter = webhook_core::Router::builder().route("policy", ()).route("audittrail", ()).build()?;
    /// assert!(filter.is_match("policy"));
    /// assert!(!filter.is_match("command"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_match(&self, subject: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| p.matches(subject, self.case_insensitive))
    }

    /// The targets for `subject` per the [`MatchMode`]; the fallback alone if none matches.
    /// Does not allocate.
    pub fn matches<'r, 's>(&'r self, subject: &'s str) -> Matches<'r, 's, T> {
        Matches {
            router: self,
            subject,
            next: 0,
            matched: false,
            done: false,
        }
    }
}

/// Iterator over the targets matching a subject; see [`Router::matches`].
#[derive(Debug)]
pub struct Matches<'r, 's, T> {
    router: &'r Router<T>,
    subject: &'s str,
    next: usize,
    matched: bool,
    done: bool,
}

impl<'r, T> Iterator for Matches<'r, '_, T> {
    type Item = &'r T;

    fn next(&mut self) -> Option<&'r T> {
        if self.done {
            return None;
        }
        let r = self.router;
        while let Some(p) = r.patterns.get(self.next) {
            let i = self.next;
            self.next += 1;
            if p.matches(self.subject, r.case_insensitive) {
                self.matched = true;
                if r.mode == MatchMode::First {
                    self.done = true;
                }
                return r.targets.get(i);
            }
        }
        self.done = true;
        if self.matched {
            None
        } else {
            r.fallback.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("policy.*", "policy.runtime", false, true),
            ("policy.*", "policy.", false, true),
            ("policy.*", "policy", false, false),
            ("*.created", "asset.created", false, true),
            ("*.created", "created", false, false),
            ("a*b*c", "abc", false, true),
            ("a*b*c", "aXbYc", false, true),
            ("a*b*c", "acb", false, false),
            ("a*a", "a", false, false),
            ("a*a", "aa", false, true),
            ("**", "", false, true),
            ("*x*", "x", false, true),
            ("POLICY.*", "policy.x", true, true),
            ("POLICY.*", "policy.x", false, false),
            ("New Asset(s) Added", "new asset(s) added", true, true),
            ("é*", "éa", false, true),
        ];
        for &(pat, subject, ci, want) in cases {
            assert_eq!(
                Pattern::compile(pat).matches(subject, ci),
                want,
                "{pat} ~ {subject} ci={ci}"
            );
        }
    }

    #[test]
    fn empty_pattern_error() {
        assert_eq!(
            Router::builder()
                .route("a", 1)
                .route("", 2)
                .build()
                .map(|r| r.len()),
            Err(RouteError::EmptyPattern { index: 1 })
        );
    }
}
