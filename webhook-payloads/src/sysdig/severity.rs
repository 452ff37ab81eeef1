//! [`Severity`]: Sysdig's 0–7 severity number folded into the four levels its UI shows.

use std::fmt;

/// A Sysdig severity level: 0–3 high, 4–5 medium, 6 low, 7 info.
///
/// ```
/// use webhook_payloads::sysdig::Severity;
/// assert_eq!(Severity::from_number(5), Some(Severity::Medium));
/// assert_eq!(Severity::from_number(8), None);
/// assert!(Severity::High > Severity::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// 7.
    Info,
    /// 6.
    Low,
    /// 4–5.
    Medium,
    /// 0–3.
    High,
}

impl Severity {
    /// Maps Sysdig's number; `None` above 7.
    pub const fn from_number(n: u64) -> Option<Self> {
        match n {
            0..=3 => Some(Self::High),
            4 | 5 => Some(Self::Medium),
            6 => Some(Self::Low),
            7 => Some(Self::Info),
            _ => None,
        }
    }

    /// `high`, `medium`, `low` or `info`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number() {
        let got: Vec<_> = (0..=8).map(Severity::from_number).collect();
        use Severity::*;
        assert_eq!(
            got,
            [
                Some(High),
                Some(High),
                Some(High),
                Some(High),
                Some(Medium),
                Some(Medium),
                Some(Low),
                Some(Info),
                None
            ]
        );
    }
}
