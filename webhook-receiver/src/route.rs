//! The routing seam: subject/type string → handler index.
//!
//! This is the exact-match table the receiver uses today; the `webhook-core` router (wildcard
//! and case-insensitive patterns, compiled once) replaces it behind the same two functions.

use std::collections::HashMap;

use crate::BuildError;

/// Compiled routes: pattern → handler index.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    exact: HashMap<Box<str>, usize>,
}

impl RouteTable {
    /// Compiles `(pattern, target)` pairs; refuses empty and duplicate patterns.
    pub(crate) fn new(routes: Vec<(String, usize)>) -> Result<Self, BuildError> {
        let mut exact = HashMap::with_capacity(routes.len());
        for (pattern, target) in routes {
            if pattern.is_empty() {
                return Err(BuildError::EmptyRoute);
            }
            if exact.contains_key(pattern.as_str()) {
                return Err(BuildError::DuplicateRoute { pattern });
            }
            exact.insert(pattern.into_boxed_str(), target);
        }
        Ok(RouteTable { exact })
    }

    /// The target for `subject`, if a route matches.
    pub(crate) fn lookup(&self, subject: &str) -> Option<usize> {
        self.exact.get(subject).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match() {
        let t = RouteTable::new(vec![("a".into(), 0), ("b".into(), 1)]).unwrap();
        assert_eq!(t.lookup("a"), Some(0));
        assert_eq!(t.lookup("b"), Some(1));
        assert_eq!(t.lookup("A"), None);
    }

    #[test]
    fn refuses_duplicates_and_empty() {
        assert!(matches!(
            RouteTable::new(vec![("a".into(), 0), ("a".into(), 1)]),
            Err(BuildError::DuplicateRoute { .. })
        ));
        assert!(matches!(
            RouteTable::new(vec![(String::new(), 0)]),
            Err(BuildError::EmptyRoute)
        ));
    }
}
