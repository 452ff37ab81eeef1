//! Routing: an item's subject/type → the index of its handler, with `webhook-core`'s compiled
//! [`Router`] (exact and `*` wildcard patterns such as `policy.*`, optional ASCII
//! case-insensitivity, first match in insertion order, fallback).
//!
//! On top of the core router this refuses a pattern given twice (the second could never
//! match in first-match mode, which is always a mistake).

use webhook_core::{MatchMode, Matches, Router};

use crate::config::ReceiverBuildError;

/// Compiled routes: subject → handler indices.
#[derive(Debug)]
pub(crate) struct Routes {
    router: Router<usize>,
    fallback: usize,
}

impl Routes {
    /// Compiles `(pattern, target)` pairs with `fallback` as the target when nothing matches.
    pub(crate) fn new(
        routes: Vec<(String, usize)>,
        case_insensitive: bool,
        mode: MatchMode,
        fallback: usize,
    ) -> Result<Self, ReceiverBuildError> {
        for (i, (pattern, _)) in routes.iter().enumerate() {
            let duplicate = routes.iter().take(i).any(|(earlier, _)| {
                if case_insensitive {
                    earlier.eq_ignore_ascii_case(pattern)
                } else {
                    earlier == pattern
                }
            });
            if duplicate {
                return Err(ReceiverBuildError::DuplicateRoute {
                    pattern: pattern.clone(),
                });
            }
        }
        let mut b = Router::builder()
            .case_insensitive(case_insensitive)
            .mode(mode)
            .fallback(fallback);
        for (pattern, target) in routes {
            b = b.route(pattern, target);
        }
        Ok(Self {
            router: b.build()?,
            fallback,
        })
    }

    /// The handler indices for `subject`: the matching routes per the match mode, or the
    /// fallback alone when nothing matches or the item has no subject. Does not allocate.
    pub(crate) fn targets<'r>(&'r self, subject: Option<&'r str>) -> Targets<'r> {
        match subject {
            Some(s) => Targets::Routed(self.router.matches(s)),
            None => Targets::Fallback(Some(self.fallback)),
        }
    }
}

/// Iterator over the handler indices of one item.
pub(crate) enum Targets<'r> {
    Routed(Matches<'r, 'r, usize>),
    Fallback(Option<usize>),
}

impl Iterator for Targets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Targets::Routed(m) => m.next().copied(),
            Targets::Fallback(f) => f.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(ci: bool, mode: MatchMode) -> Routes {
        Routes::new(
            vec![
                ("policy.*".into(), 0),
                ("Login Failure".into(), 1),
                ("*".into(), 2),
            ],
            ci,
            mode,
            3,
        )
        .unwrap()
    }

    #[test]
    fn wildcard_first_match_and_fallback() {
        let r = routes(false, MatchMode::First);
        let t = |s| r.targets(s).collect::<Vec<_>>();
        assert_eq!(t(Some("policy.runtime")), [0]);
        assert_eq!(t(Some("Login Failure")), [1]);
        assert_eq!(t(Some("login failure")), [2]);
        assert_eq!(t(None), [3]);
        let r = Routes::new(vec![("a.*".into(), 0)], false, MatchMode::First, 1).unwrap();
        assert_eq!(r.targets(Some("b")).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn case_insensitive_and_all_match() {
        let r = routes(true, MatchMode::All);
        let t = |s| r.targets(s).collect::<Vec<_>>();
        assert_eq!(t(Some("LOGIN FAILURE")), [1, 2]);
        assert_eq!(t(Some("Policy.X")), [0, 2]);
    }

    #[test]
    fn refuses_duplicates_and_empty() {
        assert!(matches!(
            Routes::new(
                vec![("a".into(), 0), ("a".into(), 1)],
                false,
                MatchMode::First,
                2
            ),
            Err(ReceiverBuildError::DuplicateRoute { .. })
        ));
        assert!(
            Routes::new(
                vec![("a".into(), 0), ("A".into(), 1)],
                false,
                MatchMode::First,
                2
            )
            .is_ok()
        );
        assert!(matches!(
            Routes::new(
                vec![("a".into(), 0), ("A".into(), 1)],
                true,
                MatchMode::First,
                2
            ),
            Err(ReceiverBuildError::DuplicateRoute { .. })
        ));
        assert!(matches!(
            Routes::new(vec![(String::new(), 0)], false, MatchMode::First, 1),
            Err(ReceiverBuildError::Route(
                webhook_core::RouteError::EmptyPattern { index: 0 }
            ))
        ));
    }
}
