//! Which events an endpoint receives: tenants, event sets, type patterns and labels, compiled
//! into an index when the subscriptions change, not per event.
//!
//! * An [`Event`] may carry a tenant (ConnectSecure's company, a Svix application) and labels
//!   (Svix channels).
//! * An [`EventSet`] is a named, reusable group of type patterns (ConnectSecure's event sets,
//!   Sysdig's channels and "Data to Send").
//! * A [`Subscription`] says what one endpoint receives: its tenant (or every tenant), the event
//!   sets and extra type patterns it subscribes to (none: every type), and a label filter (none:
//!   every event; otherwise the event must carry one of the labels).
//! * A [`Selector`] is one subscription compiled against the event sets; a [`RouteIndex`] holds
//!   the selectors of many endpoints in one table keyed by `(tenant, exact type)`, so that
//!   routing one event is one probe and looks only at the endpoints that can select it.
//!
//! ```
//! use std::sync::Arc;
//! use webhook_core::{Event, EventSet, EventSets, RouteIndex, Selector, Subscription};
//!
//! let mut sets = EventSets::new();
//! sets.insert(EventSet::new("vulnerabilities", ["vulnerability.*"]))?;
//! let acme = Subscription::tenant("acme").event_set("vulnerabilities");
//! let archive = Subscription::all_tenants();
//! let index = RouteIndex::build([
//!     (1, acme.tenant.as_deref(), Arc::new(Selector::compile(&acme, &sets)?)),
//!     (2, None, Arc::new(Selector::compile(&archive, &sets)?)),
//! ]);
//! let event = |tenant: &str, kind: &str| Event::builder("e", kind).tenant(tenant).json_bytes(&b"{}"[..]);
//! assert_eq!(index.selected(&event("acme", "vulnerability.critical")?), [1, 2]);
//! assert_eq!(index.selected(&event("globex", "vulnerability.critical")?), [2]);
//! assert_eq!(index.selected(&event("acme", "login.failure")?), [2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use std::hash::BuildHasher as _;

use hashbrown::HashTable;

use serde::{Deserialize, Serialize};

use crate::delivery::event::Event;
use crate::routing::route::{RouteError, Router};

/// A named, reusable group of event type patterns (exact types or `*` wildcards, as in
/// [`Router`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSet {
    /// The name subscriptions refer to.
    pub name: String,
    /// The type patterns.
    pub types: Vec<String>,
}

impl EventSet {
    /// An event set named `name` of `types`.
    pub fn new<I, S>(name: impl Into<String>, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            types: types.into_iter().map(Into::into).collect(),
        }
    }
}

/// Why a subscription or an event set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The subscription names an event set that does not exist.
    #[error("unknown event set {0:?}")]
    UnknownEventSet(String),
    /// An event set's name is empty.
    #[error("an event set's name is empty")]
    EmptyEventSetName,
    /// An event set of that name exists already.
    #[error("event set {0:?} exists already")]
    DuplicateEventSet(String),
    /// An event set has no type pattern (it would select nothing).
    #[error("event set {0:?} has no type pattern")]
    EmptyEventSet(String),
    /// A type pattern is invalid (empty).
    #[error("invalid type pattern")]
    Pattern(#[source] RouteError),
    /// A label in the filter is empty.
    #[error("a label in the filter is empty")]
    EmptyLabel,
}

/// The event sets subscriptions refer to, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSets {
    sets: BTreeMap<String, EventSet>,
}

impl EventSets {
    /// No event set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a new set.
    ///
    /// # Errors
    /// [`SubscriptionError::DuplicateEventSet`] when the name is taken; see
    /// [`upsert`](Self::upsert) for the others.
    pub fn insert(&mut self, set: EventSet) -> Result<(), SubscriptionError> {
        if self.sets.contains_key(&set.name) {
            return Err(SubscriptionError::DuplicateEventSet(set.name));
        }
        self.upsert(set).map(drop)
    }

    /// Adds or replaces a set, returning the one it replaced.
    ///
    /// # Errors
    /// [`SubscriptionError::EmptyEventSetName`], [`SubscriptionError::EmptyEventSet`] or
    /// [`SubscriptionError::Pattern`].
    pub fn upsert(&mut self, set: EventSet) -> Result<Option<EventSet>, SubscriptionError> {
        if set.name.is_empty() {
            return Err(SubscriptionError::EmptyEventSetName);
        }
        if set.types.is_empty() {
            return Err(SubscriptionError::EmptyEventSet(set.name));
        }
        compile_types(set.types.iter())?;
        Ok(self.sets.insert(set.name.clone(), set))
    }

    /// Removes a set.
    pub fn remove(&mut self, name: &str) -> Option<EventSet> {
        self.sets.remove(name)
    }

    /// The set named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&EventSet> {
        self.sets.get(name)
    }

    /// Every set, by name.
    pub fn iter(&self) -> impl Iterator<Item = &EventSet> {
        self.sets.values()
    }

    /// Number of sets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// What one endpoint receives.
///
/// * `tenant`: `None` for every tenant's events and those without a tenant (a platform-wide
///   archive or SIEM); `Some(t)` for the events of tenant `t` only.
/// * `event_sets` and `types`: the union of the named sets' patterns and these patterns; both
///   empty selects every type.
/// * `labels`: empty selects every event; otherwise the event must carry one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Subscription {
    /// The tenant, or `None` for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Names of event sets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_sets: Vec<String>,
    /// Extra type patterns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Label filter (any of).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Subscription {
    /// Every event of every tenant.
    #[must_use]
    pub fn all_tenants() -> Self {
        Self::default()
    }

    /// Every event of tenant `tenant`.
    #[must_use]
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self {
            tenant: Some(tenant.into()),
            ..Self::default()
        }
    }

    /// Adds an event set by name.
    #[must_use]
    pub fn event_set(mut self, name: impl Into<String>) -> Self {
        self.event_sets.push(name.into());
        self
    }

    /// Adds type patterns.
    #[must_use]
    pub fn types<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Adds labels to the filter.
    #[must_use]
    pub fn labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labels.extend(labels.into_iter().map(Into::into));
        self
    }

    /// Whether the subscription uses the event set `name`.
    #[must_use]
    pub fn uses_event_set(&self, name: &str) -> bool {
        self.event_sets.iter().any(|s| s == name)
    }
}

fn compile_types<'a>(
    patterns: impl Iterator<Item = &'a String>,
) -> Result<Router<()>, SubscriptionError> {
    let mut router = Router::builder();
    for p in patterns {
        router = router.route(p.as_str(), ());
    }
    router.build().map_err(SubscriptionError::Pattern)
}

/// A [`Subscription`] compiled against the event sets (its tenant is the [`RouteIndex`]'s
/// business): the type patterns, split into exact types and wildcard patterns, and the label
/// filter.
#[derive(Debug, Clone)]
pub struct Selector {
    /// `None`: every type.
    types: Option<Types>,
    labels: Box<[Box<str>]>,
}

#[derive(Debug, Clone)]
struct Types {
    /// Patterns without `*`, deduplicated.
    exact: Box<[Box<str>]>,
    /// Patterns with `*` (`None`: none).
    wildcards: Option<Router<()>>,
}

impl Selector {
    /// Compiles `subscription` against `sets`.
    ///
    /// # Errors
    /// [`SubscriptionError::UnknownEventSet`], [`SubscriptionError::Pattern`] or
    /// [`SubscriptionError::EmptyLabel`].
    pub fn compile(
        subscription: &Subscription,
        sets: &EventSets,
    ) -> Result<Self, SubscriptionError> {
        let mut patterns: Vec<&String> = subscription.types.iter().collect();
        for name in &subscription.event_sets {
            let set = sets
                .get(name)
                .ok_or_else(|| SubscriptionError::UnknownEventSet(name.clone()))?;
            patterns.extend(&set.types);
        }
        if subscription.labels.iter().any(String::is_empty) {
            return Err(SubscriptionError::EmptyLabel);
        }
        let labels = subscription
            .labels
            .iter()
            .map(|l| Box::from(l.as_str()))
            .collect();
        if patterns.is_empty() {
            return Ok(Self {
                types: None,
                labels,
            });
        }
        // Validates every pattern (an empty one is refused).
        compile_types(patterns.iter().copied())?;
        let (wild, exact): (Vec<&String>, Vec<&String>) =
            patterns.into_iter().partition(|p| p.contains('*'));
        let mut exact: Vec<Box<str>> = exact.into_iter().map(|p| Box::from(p.as_str())).collect();
        exact.sort_unstable();
        exact.dedup();
        let wildcards = if wild.is_empty() {
            None
        } else {
            Some(compile_types(wild.into_iter())?)
        };
        Ok(Self {
            types: Some(Types {
                exact: exact.into_boxed_slice(),
                wildcards,
            }),
            labels,
        })
    }

    /// Whether the event's type and labels are selected (the tenant is not checked here).
    #[must_use]
    pub fn selects(&self, event: &Event) -> bool {
        self.selects_type(event.subject()) && self.selects_labels(event)
    }

    fn selects_type(&self, subject: &str) -> bool {
        self.types.as_ref().is_none_or(|t| {
            t.exact.iter().any(|e| **e == *subject)
                || t.wildcards.as_ref().is_some_and(|w| w.is_match(subject))
        })
    }

    fn selects_labels(&self, event: &Event) -> bool {
        self.labels.is_empty()
            || event
                .labels()
                .iter()
                .any(|l| self.labels.iter().any(|f| f == l))
    }

    /// The exact types, when every pattern is exact (`None`: some wildcard, or every type).
    fn exact_only(&self) -> Option<&[Box<str>]> {
        self.types
            .as_ref()
            .filter(|t| t.wildcards.is_none())
            .map(|t| &*t.exact)
    }
}

/// One endpoint an exact `(tenant, type)` selects: its label filter is looked at only when it
/// has one (`None`: every event of that tenant and type).
#[derive(Debug)]
struct Hit<K> {
    key: K,
    labels: Option<Arc<Selector>>,
}

impl<K: Copy> Hit<K> {
    fn visit(&self, event: &Event, f: &mut impl FnMut(K)) {
        if self.labels.as_ref().is_none_or(|s| s.selects_labels(event)) {
            f(self.key);
        }
    }
}

/// The endpoints of one exact `(tenant, type)`; the tenant and the type share one allocation,
/// so recognising the entry reads one string.
#[derive(Debug)]
struct Exact<K> {
    hash: u64,
    /// The tenant's length (`u32::MAX`: every tenant).
    tenant_len: u32,
    /// The tenant, then the type.
    pair: Box<str>,
    first: Hit<K>,
    more: Vec<Hit<K>>,
}

const EVERY_TENANT: u32 = u32::MAX;

impl<K> Exact<K> {
    fn is(&self, hash: u64, tenant: Option<&str>, kind: &str) -> bool {
        if self.hash != hash {
            return false;
        }
        let (tl, t) = match tenant {
            None => (EVERY_TENANT, ""),
            Some(t) => match u32::try_from(t.len()) {
                Ok(l) if l != EVERY_TENANT => (l, t),
                _ => return false,
            },
        };
        tl == self.tenant_len
            && self.pair.len() == t.len() + kind.len()
            && self.pair.as_bytes().get(..t.len()) == Some(t.as_bytes())
            && self.pair.as_bytes().get(t.len()..) == Some(kind.as_bytes())
    }
}

type Scan<K> = Vec<(K, Arc<Selector>)>;

/// Compiled routing for many endpoints.
///
/// Endpoints whose types are all exact are found with one probe of one table keyed by
/// `(tenant, type)` (hashed once per probe, foldhash); the others (wildcards, or every type)
/// are checked one by one, those of every tenant and those of the event's tenant only. Label
/// filters are read only for the endpoints that have one. Built whole from the endpoints'
/// selectors when a subscription changes (selectors are shared, so a rebuild compiles no
/// pattern).
#[derive(Debug)]
pub struct RouteIndex<K> {
    exact: HashTable<Exact<K>>,
    /// Some exact entry is of every tenant / of one tenant (the probe is skipped otherwise).
    everyone_exact: bool,
    tenant_exact: bool,
    scan_everyone: Scan<K>,
    scan_tenants: HashMap<Box<str>, Scan<K>, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    len: usize,
}

impl<K: Copy> Default for RouteIndex<K> {
    fn default() -> Self {
        Self {
            exact: HashTable::new(),
            everyone_exact: false,
            tenant_exact: false,
            scan_everyone: Vec::new(),
            scan_tenants: HashMap::default(),
            hasher: foldhash::fast::RandomState::default(),
            len: 0,
        }
    }
}

impl<K: Copy> RouteIndex<K> {
    /// Indexes `(key, tenant, selector)` triples (`tenant`: `None` for every tenant).
    pub fn build<'t>(
        entries: impl IntoIterator<Item = (K, Option<&'t str>, Arc<Selector>)>,
    ) -> Self {
        let mut index = Self::default();
        for (key, tenant, selector) in entries {
            index.len += 1;
            let Some(types) = selector.exact_only() else {
                match tenant {
                    None => index.scan_everyone.push((key, selector)),
                    Some(t) => index
                        .scan_tenants
                        .entry(Box::from(t))
                        .or_default()
                        .push((key, selector)),
                }
                continue;
            };
            let labels = (!selector.labels.is_empty()).then(|| Arc::clone(&selector));
            for kind in types {
                index.insert(
                    tenant,
                    kind,
                    Hit {
                        key,
                        labels: labels.clone(),
                    },
                );
            }
        }
        index
    }

    fn hash(&self, tenant: Option<&str>, kind: &str) -> u64 {
        self.hasher.hash_one((tenant, kind))
    }

    fn insert(&mut self, tenant: Option<&str>, kind: &str, hit: Hit<K>) {
        let hash = self.hash(tenant, kind);
        if let Some(e) = self.exact.find_mut(hash, |e| e.is(hash, tenant, kind)) {
            e.more.push(hit);
            return;
        }
        match tenant {
            None => self.everyone_exact = true,
            Some(_) => self.tenant_exact = true,
        }
        let t = tenant.unwrap_or("");
        let entry = Exact {
            hash,
            tenant_len: tenant.map_or(EVERY_TENANT, |t| {
                u32::try_from(t.len()).unwrap_or(EVERY_TENANT - 1)
            }),
            pair: format!("{t}{kind}").into_boxed_str(),
            first: hit,
            more: Vec::new(),
        };
        self.exact.insert_unique(hash, entry, |e| e.hash);
    }

    fn probe(&self, tenant: Option<&str>, event: &Event, f: &mut impl FnMut(K)) {
        let kind = event.subject();
        let hash = self.hash(tenant, kind);
        if let Some(e) = self.exact.find(hash, |e| e.is(hash, tenant, kind)) {
            e.first.visit(event, f);
            for hit in &e.more {
                hit.visit(event, f);
            }
        }
    }

    /// Calls `f` with the key of every endpoint selecting `event`, each once, in no
    /// particular order.
    pub fn for_each_selected(&self, event: &Event, mut f: impl FnMut(K)) {
        let tenant = event.tenant();
        if self.everyone_exact {
            self.probe(None, event, &mut f);
        }
        if self.tenant_exact && tenant.is_some() {
            self.probe(tenant, event, &mut f);
        }
        for (k, s) in &self.scan_everyone {
            if s.selects(event) {
                f(*k);
            }
        }
        if let Some(list) = tenant
            .filter(|_| !self.scan_tenants.is_empty())
            .and_then(|t| self.scan_tenants.get(t))
        {
            for (k, s) in list {
                if s.selects(event) {
                    f(*k);
                }
            }
        }
    }

    /// The keys of the endpoints selecting `event`
    /// ([`for_each_selected`](Self::for_each_selected)), sorted.
    #[must_use]
    pub fn selected(&self, event: &Event) -> Vec<K>
    where
        K: Ord,
    {
        let mut out = Vec::new();
        self.for_each_selected(event, |k| out.push(k));
        out.sort_unstable();
        out
    }

    /// Endpoints indexed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no endpoint is indexed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: Option<&str>, subject: &str, labels: &[&str]) -> Event {
        let mut b = Event::builder("e", subject);
        if let Some(t) = tenant {
            b = b.tenant(t);
        }
        for l in labels {
            b = b.label(*l);
        }
        b.json_bytes(&b"{}"[..]).unwrap()
    }

    fn sel(sub: &Subscription, sets: &EventSets) -> Arc<Selector> {
        Arc::new(Selector::compile(sub, sets).unwrap())
    }

    #[test]
    fn tenants_types_sets_and_labels() {
        let mut sets = EventSets::new();
        sets.insert(EventSet::new("audit", ["command", "connection"]))
            .unwrap();
        sets.insert(EventSet::new("policies", ["policy", "policy.*"]))
            .unwrap();
        let subs = [
            Subscription::tenant("a").event_set("audit"),
            Subscription::tenant("a")
                .event_set("policies")
                .labels(["prod"]),
            Subscription::tenant("b"),
            Subscription::all_tenants().types(["policy"]),
        ];
        let index = RouteIndex::build(
            subs.iter()
                .enumerate()
                .map(|(i, s)| (i, s.tenant.as_deref(), sel(s, &sets))),
        );
        assert_eq!(index.len(), 4);
        assert_eq!(index.selected(&event(Some("a"), "command", &[])), [0]);
        assert_eq!(index.selected(&event(Some("a"), "policy", &[])), [3]);
        assert_eq!(
            index.selected(&event(Some("a"), "policy", &["dev", "prod"])),
            [1, 3]
        );
        assert_eq!(
            index.selected(&event(Some("a"), "policy.x", &["prod"])),
            [1]
        );
        assert_eq!(index.selected(&event(Some("b"), "anything", &[])), [2]);
        assert_eq!(index.selected(&event(None, "policy", &[])), [3]);
        assert_eq!(
            index.selected(&event(Some("c"), "command", &[])),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn refusals_are_typed() {
        let mut sets = EventSets::new();
        assert_eq!(
            Selector::compile(&Subscription::default().event_set("x"), &sets).err(),
            Some(SubscriptionError::UnknownEventSet("x".into()))
        );
        assert!(matches!(
            Selector::compile(&Subscription::default().types([""]), &sets),
            Err(SubscriptionError::Pattern(_))
        ));
        assert_eq!(
            Selector::compile(&Subscription::default().labels([""]), &sets).err(),
            Some(SubscriptionError::EmptyLabel)
        );
        assert_eq!(
            sets.insert(EventSet::new("", ["a"])),
            Err(SubscriptionError::EmptyEventSetName)
        );
        assert_eq!(
            sets.insert(EventSet::new("e", Vec::<String>::new())),
            Err(SubscriptionError::EmptyEventSet("e".into()))
        );
        sets.insert(EventSet::new("e", ["a"])).unwrap();
        assert_eq!(
            sets.insert(EventSet::new("e", ["b"])),
            Err(SubscriptionError::DuplicateEventSet("e".into()))
        );
        assert!(sets.upsert(EventSet::new("e", ["b"])).unwrap().is_some());
    }

    #[test]
    fn an_exact_type_listed_twice_selects_once() {
        let mut sets = EventSets::new();
        sets.insert(EventSet::new("s", ["x"])).unwrap();
        let sub = Subscription::default().event_set("s").types(["x"]);
        let index = RouteIndex::build([(7, None, sel(&sub, &sets))]);
        assert_eq!(index.selected(&event(None, "x", &[])), [7]);
    }
}
